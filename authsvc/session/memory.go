package session

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Bounds of the in-memory store.
const (
	DefaultMaxSessions = 100_000
	DefaultMaxPerUser  = 50
	// maxSiblings bounds the tokens issued from one token within the grace
	// period (parallel tabs); maxRetired bounds the replaced tokens a session
	// remembers for reuse detection.
	maxSiblings = 4
	maxRetired  = 16
	sweepEvery  = time.Minute
)

// Memory is a Store held in this process: one replica, and a restart signs
// everyone out. Expired sessions are swept as the store is used; the number of
// sessions, and of sessions per user, is bounded.
type Memory struct {
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
	// Grace is how long a replaced refresh token stays usable; 0 means DefaultGrace.
	Grace time.Duration
	// MaxSessions bounds the store (0: DefaultMaxSessions); past it Create
	// returns ErrFull. MaxPerUser (0: DefaultMaxPerUser) bounds the sessions of
	// one user of one policy; past it the oldest of them ends.
	MaxSessions, MaxPerUser int

	mu        sync.Mutex
	byID      map[string]*memSession
	byToken   map[tokenHash]*memSession
	byUser    map[userKey][]*memSession // oldest first
	lastSweep time.Time
	once      map[onceKey]time.Time // used single-use values, until they expire
}

type onceKey struct{ policy, value string }

type userKey struct{ policy, user string }

type memSession struct {
	s       Session
	current []tokenHash // the live token, plus siblings issued within a grace period
	retired []retired   // oldest first
}

type retired struct {
	h     tokenHash
	until time.Time // end of its grace period
}

// NewMemory returns an empty in-memory store with the default bounds.
func NewMemory() *Memory { return &Memory{} }

var _ Store = (*Memory)(nil)

func (m *Memory) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

func (m *Memory) grace() time.Duration {
	if m.Grace > 0 {
		return m.Grace
	}
	return DefaultGrace
}

func (m *Memory) initLocked() {
	if m.byID == nil {
		m.byID = map[string]*memSession{}
		m.byToken = map[tokenHash]*memSession{}
		m.byUser = map[userKey][]*memSession{}
		m.once = map[onceKey]time.Time{}
	}
}

// Create implements Store.
func (m *Memory) Create(_ context.Context, n New) (Session, string, error) {
	id, err := NewID()
	if err != nil {
		return Session{}, "", err
	}
	token, err := NewToken()
	if err != nil {
		return Session{}, "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.initLocked()
	now := m.now()
	m.maybeSweepLocked(now, false)
	max := m.MaxSessions
	if max <= 0 {
		max = DefaultMaxSessions
	}
	if len(m.byID) >= max {
		m.maybeSweepLocked(now, true)
		if len(m.byID) >= max {
			return Session{}, "", ErrFull
		}
	}
	perUser := m.MaxPerUser
	if perUser <= 0 {
		perUser = DefaultMaxPerUser
	}
	uk := userKey{n.Policy, n.User}
	for len(m.byUser[uk]) >= perUser {
		m.removeLocked(m.byUser[uk][0])
	}
	ms := &memSession{s: Session{
		ID: id, Policy: n.Policy, User: n.User, Roles: slices.Clone(n.Roles), TTL: n.TTL,
		Created: now, Expires: now.Add(n.TTL),
		MaxLifetime: n.MaxLifetime, Credential: n.Credential, Origin: n.Origin,
	}}
	h := hashToken(token)
	ms.current = []tokenHash{h}
	m.byID[id] = ms
	m.byToken[h] = ms
	m.byUser[uk] = append(m.byUser[uk], ms)
	return ms.copy(), token, nil
}

// Rotate implements Store. With ErrReused it also returns the session it ended.
func (m *Memory) Rotate(_ context.Context, policy, refreshToken string) (Session, string, error) {
	if !wellFormed(refreshToken) {
		return Session{}, "", ErrInvalid
	}
	next, err := NewToken()
	if err != nil {
		return Session{}, "", err
	}
	h := hashToken(refreshToken)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.initLocked()
	now := m.now()
	ms := m.byToken[h]
	if ms == nil || ms.s.Policy != policy {
		return Session{}, "", ErrInvalid
	}
	if !now.Before(ms.s.Expires) {
		m.removeLocked(ms)
		return Session{}, "", ErrInvalid
	}
	nh := hashToken(next)
	switch {
	case slices.Contains(ms.current, h):
		// The normal case: every live token is replaced and gets the grace period.
		for _, c := range ms.current {
			ms.retire(c, now.Add(m.grace()))
		}
		ms.current = []tokenHash{nh}
	default:
		i := slices.IndexFunc(ms.retired, func(r retired) bool { return r.h == h })
		if i < 0 || !now.Before(ms.retired[i].until) {
			m.removeLocked(ms)
			return ms.copy(), "", ErrReused
		}
		// A parallel request with the token just replaced: issue a sibling of the
		// live token, so that whichever answer the browser keeps stays valid.
		if len(ms.current) >= maxSiblings {
			ms.retire(ms.current[0], now.Add(m.grace()))
			ms.current = ms.current[1:]
		}
		ms.current = append(ms.current, nh)
	}
	for len(ms.retired) > maxRetired {
		delete(m.byToken, ms.retired[0].h)
		ms.retired = ms.retired[1:]
	}
	m.byToken[nh] = ms
	ms.s.Refreshed = now
	ms.s.Rotations++
	ms.s.Expires = now.Add(ms.s.TTL)
	return ms.copy(), next, nil
}

func (ms *memSession) retire(h tokenHash, until time.Time) {
	ms.retired = append(ms.retired, retired{h: h, until: until})
}

// EndByToken implements Store.
func (m *Memory) EndByToken(_ context.Context, policy, refreshToken string) (Session, error) {
	if !wellFormed(refreshToken) {
		return Session{}, ErrInvalid
	}
	h := hashToken(refreshToken)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.initLocked()
	ms := m.byToken[h]
	if ms == nil || ms.s.Policy != policy {
		return Session{}, ErrInvalid
	}
	m.removeLocked(ms)
	return ms.copy(), nil
}

// End implements Store.
func (m *Memory) End(_ context.Context, policy, sessionID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.initLocked()
	if ms := m.byID[sessionID]; ms != nil && ms.s.Policy == policy {
		m.removeLocked(ms)
	}
	return nil
}

// EndUser implements Store.
func (m *Memory) EndUser(_ context.Context, policy, user string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.initLocked()
	list := slices.Clone(m.byUser[userKey{policy, user}])
	for _, ms := range list {
		m.removeLocked(ms)
	}
	return len(list), nil
}

// UserSessions lists the live sessions of user in policy, oldest first
// (admin.SessionLister); never nil.
func (m *Memory) UserSessions(_ context.Context, policy, user string) ([]Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	out := []Session{}
	for _, ms := range m.byUser[userKey{policy, user}] {
		if now.Before(ms.s.Expires) {
			out = append(out, ms.copy())
		}
	}
	return out, nil
}

// SessionAlive implements Store and policy.SessionChecker.
func (m *Memory) SessionAlive(policy, sessionID string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	ms := m.byID[sessionID]
	return ms != nil && ms.s.Policy == policy && m.now().Before(ms.s.Expires)
}

// Len is the number of sessions held, expired ones not yet swept included.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.byID)
}

// Sweep removes expired sessions now.
func (m *Memory) Sweep() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.initLocked()
	m.maybeSweepLocked(m.now(), true)
}

func (m *Memory) maybeSweepLocked(now time.Time, force bool) {
	if !force && now.Sub(m.lastSweep) < sweepEvery {
		return
	}
	m.lastSweep = now
	for k, until := range m.once {
		if !now.Before(until) {
			delete(m.once, k)
		}
	}
	for _, ms := range m.byID {
		if !now.Before(ms.s.Expires) {
			m.removeLocked(ms)
		}
	}
}

func (m *Memory) removeLocked(ms *memSession) {
	if m.byID[ms.s.ID] != ms {
		return
	}
	delete(m.byID, ms.s.ID)
	for _, h := range ms.current {
		delete(m.byToken, h)
	}
	for _, r := range ms.retired {
		delete(m.byToken, r.h)
	}
	uk := userKey{ms.s.Policy, ms.s.User}
	list := slices.DeleteFunc(m.byUser[uk], func(x *memSession) bool { return x == ms })
	if len(list) == 0 {
		delete(m.byUser, uk)
	} else {
		m.byUser[uk] = list
	}
}

func (ms *memSession) copy() Session {
	s := ms.s
	s.Roles = slices.Clone(s.Roles)
	return s
}

var _ OnceStore = (*Memory)(nil)

// UseOnce implements OnceStore. The values held are bounded as the sessions are.
func (m *Memory) UseOnce(_ context.Context, policy, value string, until time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.initLocked()
	now := m.now()
	m.maybeSweepLocked(now, false)
	k := onceKey{policy, value}
	if u, ok := m.once[k]; ok && now.Before(u) {
		return false, nil
	}
	max := m.MaxSessions
	if max <= 0 {
		max = DefaultMaxSessions
	}
	if len(m.once) >= max {
		m.maybeSweepLocked(now, true)
		if len(m.once) >= max {
			return false, ErrFull
		}
	}
	m.once[k] = until
	return true, nil
}
