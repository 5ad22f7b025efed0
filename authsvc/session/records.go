package session

// Token records: who was issued a session, when its refresh token rotated,
// when and by whom it ended, and which refreshes were refused. They are written
// as structured audit log lines (never a token, never a token hash) and kept
// queryable: by the Redis store for the refresh-token lifetime, or by
// MemoryRecords in this process. The admin API (authsvc/admin) answers from
// them; this package knows nothing of it.

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Event kinds.
const (
	// EventIssued: a sign-in started a session and issued its first refresh token.
	EventIssued = "issued"
	// EventRefreshed: a refresh token was used and rotated.
	EventRefreshed = "refreshed"
	// EventRevoked: a session ended before its expiry: sign-out, an admin,
	// reuse detection, a user removed from the users file. With Session empty:
	// every session of the user ended.
	EventRevoked = "revoked"
	// EventRefused: a refresh was refused (a reused token, a user who is gone).
	EventRefused = "refused"
)

// Who caused an event (Event.By). Admin revocations may name the admin after
// a colon ("admin:jane").
const (
	ByUser   = "user"   // the user: sign-in, refresh, sign-out
	ByAdmin  = "admin"  // the admin API
	BySystem = "system" // jwtgate itself: reuse detection, users file changes
)

// Event is one token record. It never holds a token or a token hash.
type Event struct {
	Time    time.Time `json:"time"`
	Kind    string    `json:"event"` // Event* constant
	Policy  string    `json:"policy"`
	User    string    `json:"sub,omitempty"`
	Session string    `json:"session,omitempty"` // empty on a revocation of every session of User
	By      string    `json:"by,omitempty"`      // By* constant, "admin:NAME"
	Reason  string    `json:"reason,omitempty"`  // free text: "sign-out", "reused after rotation", ...
	Client  string    `json:"client,omitempty"`  // client address, when known
	Expires time.Time `json:"expires,omitzero"`  // end of the refresh token issued, for issued and refreshed
	Count   int       `json:"count,omitempty"`   // sessions ended, for a revocation of every session
	// Method is how the session began: password or oidc (signin_method).
	Method string `json:"signin_method,omitempty"`
	// ProviderSub and ProviderSID are the OpenID provider's sub and sid of a
	// session that began there.
	ProviderSub string `json:"provider_sub,omitempty"`
	ProviderSID string `json:"provider_sid,omitempty"`
}

// SessionRecord is what /admin/tokens says about one session.
type SessionRecord struct {
	ID        string    `json:"id"`
	Roles     []string  `json:"roles,omitempty"`
	Issued    time.Time `json:"issued,omitzero"`
	Client    string    `json:"client,omitempty"` // of the sign-in
	Refreshes int       `json:"refreshes"`
	LastUsed  time.Time `json:"last_used,omitzero"` // last sign-in or refresh
	Expires   time.Time `json:"expires,omitzero"`   // of the current refresh token
	Alive     bool      `json:"alive"`
	Ended     time.Time `json:"ended,omitzero"`
	EndedBy   string    `json:"ended_by,omitempty"`
	EndReason string    `json:"end_reason,omitempty"`
	// Method, ProviderSub and ProviderSID: how the session began (password
	// or oidc) and, at a provider, its sub and sid.
	Method      string `json:"signin_method,omitempty"`
	ProviderSub string `json:"provider_sub,omitempty"`
	ProviderSID string `json:"provider_sid,omitempty"`
}

// UserRecord is the record of one user of one policy: sessions newest first,
// events newest first.
type UserRecord struct {
	Policy   string          `json:"policy"`
	User     string          `json:"sub"`
	Sessions []SessionRecord `json:"sessions"`
	Events   []Event         `json:"events"`
}

// Records keeps token records. Record writes the audit log line even when it
// cannot keep the event (and then returns the error).
type Records interface {
	Record(ctx context.Context, e Event) error
	UserRecord(ctx context.Context, policy, user string) (UserRecord, error)
	// SessionUser names the user of a session the records know; "" when none.
	SessionUser(ctx context.Context, policy, sessionID string) (string, error)
}

// SessionLister is what a session store offers /admin/tokens beyond
// Store: the live sessions of a user. The Redis store has it.
type SessionLister interface {
	UserSessions(ctx context.Context, policy, user string) ([]Session, error)
}

// LogEvent writes the audit line of an event.
func LogEvent(ctx context.Context, log *slog.Logger, e Event) {
	if log == nil {
		return
	}
	attrs := []slog.Attr{
		slog.String("audit", "token"),
		slog.String("event", e.Kind),
		slog.String("policy", e.Policy),
	}
	add := func(k, v string) {
		if v != "" {
			attrs = append(attrs, slog.String(k, v))
		}
	}
	add("user", e.User)
	add("session", e.Session)
	add("by", e.By)
	add("reason", e.Reason)
	add("client", e.Client)
	add("signin_method", e.Method)
	add("provider_sub", e.ProviderSub)
	add("provider_sid", e.ProviderSID)
	if !e.Expires.IsZero() {
		attrs = append(attrs, slog.Time("expires", e.Expires))
	}
	if e.Count > 0 {
		attrs = append(attrs, slog.Int("count", e.Count))
	}
	attrs = append(attrs, slog.Time("at", e.Time))
	log.LogAttrs(ctx, slog.LevelInfo, "token "+e.Kind, attrs...)
}

// BuildUserRecord assembles a user's record from the sessions a store holds
// (live; nil when the store cannot list them) and the events kept (any order).
// alive, when not nil, says whether a session not in live is alive (a store
// that cannot list sessions).
func BuildUserRecord(policy, user string, live []Session, events []Event, now time.Time, alive func(sessionID string) bool) UserRecord {
	events = slices.Clone(events)
	slices.SortStableFunc(events, func(a, b Event) int { return a.Time.Compare(b.Time) }) // oldest first
	rb := recordBuilder{byID: map[string]*SessionRecord{}, liveIDs: map[string]bool{}}
	for _, s := range live {
		rb.liveIDs[s.ID] = true
	}
	for _, e := range events {
		rb.applyEvent(e)
	}
	for _, s := range live {
		rb.applyLive(s, now)
	}
	out := UserRecord{Policy: policy, User: user, Sessions: []SessionRecord{}, Events: events}
	for _, id := range rb.order {
		r := rb.byID[id]
		if !rb.liveIDs[id] && r.Ended.IsZero() {
			switch {
			case !r.Expires.IsZero() && !now.Before(r.Expires):
				r.Ended, r.EndReason = r.Expires, "expired"
			case live == nil && alive != nil && alive(id):
				r.Alive = true
			default:
				// Not held by the store and not ended by any event kept: evicted,
				// ended past the records kept, or a store that was lost.
				r.EndReason = "no longer in the session store"
			}
		}
		out.Sessions = append(out.Sessions, *r)
	}
	slices.SortStableFunc(out.Sessions, func(a, b SessionRecord) int { return b.Issued.Compare(a.Issued) })
	slices.Reverse(out.Events)
	if out.Events == nil {
		out.Events = []Event{}
	}
	return out
}

// recordBuilder gathers the session records of one user, in the order their
// sessions were first seen.
type recordBuilder struct {
	byID    map[string]*SessionRecord
	order   []string
	liveIDs map[string]bool // the sessions the store holds now
}

func (b *recordBuilder) get(id string) *SessionRecord {
	r := b.byID[id]
	if r == nil {
		r = &SessionRecord{ID: id}
		b.byID[id] = r
		b.order = append(b.order, id)
	}
	return r
}

// applyEvent adds what one event (taken oldest first) says about a session: a
// revocation of every session of the user ends those issued before it that
// the store no longer holds.
func (b *recordBuilder) applyEvent(e Event) {
	switch e.Kind {
	case EventIssued:
		if e.Session == "" {
			return
		}
		r := b.get(e.Session)
		r.Issued, r.Client, r.LastUsed = e.Time, e.Client, e.Time
		r.Expires = e.Expires
		r.Method, r.ProviderSub, r.ProviderSID = e.Method, e.ProviderSub, e.ProviderSID
	case EventRefreshed:
		if e.Session == "" {
			return
		}
		r := b.get(e.Session)
		r.Refreshes++
		r.LastUsed = e.Time
		if !e.Expires.IsZero() {
			r.Expires = e.Expires
		}
	case EventRevoked:
		if e.Session != "" {
			r := b.get(e.Session)
			if r.Ended.IsZero() {
				r.Ended, r.EndedBy, r.EndReason = e.Time, e.By, e.Reason
			}
			return
		}
		for _, r := range b.byID {
			if r.Ended.IsZero() && !r.Issued.After(e.Time) && !b.liveIDs[r.ID] {
				r.Ended, r.EndedBy, r.EndReason = e.Time, e.By, e.Reason
			}
		}
	}
}

// applyLive overrides the events with what the store holds now about a live
// session: it has not ended, whatever an event said.
func (b *recordBuilder) applyLive(s Session, now time.Time) {
	r := b.get(s.ID)
	r.Roles = slices.Clone(s.Roles)
	r.Issued = s.Created
	r.Refreshes = max(r.Refreshes, s.Rotations)
	r.LastUsed = s.Created
	if s.Refreshed.After(r.LastUsed) {
		r.LastUsed = s.Refreshed
	}
	r.Expires = s.Expires
	r.Alive = now.Before(s.Expires)
	if s.Origin.Method != "" {
		r.Method, r.ProviderSub, r.ProviderSID = s.Origin.Method, s.Origin.Subject, s.Origin.SID
	}
	r.Ended, r.EndedBy, r.EndReason = time.Time{}, "", ""
}

// Defaults of the records kept.
const (
	DefaultEventsPerUser = 200
	DefaultRecordTTL     = 14 * 24 * time.Hour
	DefaultMaxUsers      = 10_000
)

// MemoryRecords keeps records in this process, for the in-memory session store
// (one replica): a restart forgets them, as it forgets the sessions. It keeps
// the newest EventsPerUser events of each user, each for RecordTTL or until its
// Expires, whichever is later, and at most MaxUsers users (the least recently
// recorded are forgotten first).
type MemoryRecords struct {
	Log *slog.Logger // audit lines; nil: none
	// Sessions, when it is a SessionLister, lists live sessions; otherwise its
	// SessionAlive says which sessions the records know are alive. May be nil.
	Sessions      Store
	EventsPerUser int           // 0: DefaultEventsPerUser
	RecordTTL     time.Duration // 0: DefaultRecordTTL
	MaxUsers      int           // 0: DefaultMaxUsers
	Now           func() time.Time

	mu    sync.Mutex
	users map[recKey]*memUser
	sids  map[recKey]string // policy, session -> user
}

type recKey struct{ policy, id string }

type memUser struct {
	events  []Event // oldest first
	touched time.Time
}

var _ Records = (*MemoryRecords)(nil)

func (m *MemoryRecords) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// Record implements Records.
func (m *MemoryRecords) Record(ctx context.Context, e Event) error {
	if e.Time.IsZero() {
		e.Time = m.now()
	}
	LogEvent(ctx, m.Log, e)
	if e.User == "" {
		return nil
	}
	perUser := cmp.Or(m.EventsPerUser, DefaultEventsPerUser)
	maxUsers := cmp.Or(m.MaxUsers, DefaultMaxUsers)
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.users == nil {
		m.users = map[recKey]*memUser{}
		m.sids = map[recKey]string{}
	}
	k := recKey{e.Policy, e.User}
	u := m.users[k]
	if u == nil {
		if len(m.users) >= maxUsers {
			m.pruneLocked(now, maxUsers-1)
		}
		u = &memUser{}
		m.users[k] = u
	}
	u.events = append(u.events, e)
	if len(u.events) > perUser {
		u.events = slices.Delete(u.events, 0, len(u.events)-perUser)
	}
	u.touched = now
	if e.Session != "" {
		m.sids[recKey{e.Policy, e.Session}] = e.User
	}
	return nil
}

// pruneLocked drops expired events, then the least recently recorded users
// until at most keep remain, and the session index entries of dropped events.
func (m *MemoryRecords) pruneLocked(now time.Time, keep int) {
	ttl := cmp.Or(m.RecordTTL, DefaultRecordTTL)
	for k, u := range m.users {
		u.events = slices.DeleteFunc(u.events, func(e Event) bool { return m.expired(e, now, ttl) })
		if len(u.events) == 0 {
			delete(m.users, k)
		}
	}
	if len(m.users) > keep {
		keys := make([]recKey, 0, len(m.users))
		for k := range m.users {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b recKey) int { return m.users[a].touched.Compare(m.users[b].touched) })
		for _, k := range keys[:len(keys)-keep] {
			delete(m.users, k)
		}
	}
	for sk, user := range m.sids {
		u := m.users[recKey{sk.policy, user}]
		if u == nil || !slices.ContainsFunc(u.events, func(e Event) bool { return e.Session == sk.id }) {
			delete(m.sids, sk)
		}
	}
}

func (m *MemoryRecords) expired(e Event, now time.Time, ttl time.Duration) bool {
	end := e.Time.Add(ttl)
	if e.Expires.After(end) {
		end = e.Expires
	}
	return !now.Before(end)
}

// UserRecord implements Records.
func (m *MemoryRecords) UserRecord(ctx context.Context, policy, user string) (UserRecord, error) {
	now := m.now()
	ttl := cmp.Or(m.RecordTTL, DefaultRecordTTL)
	m.mu.Lock()
	var events []Event
	if u := m.users[recKey{policy, user}]; u != nil {
		for _, e := range u.events {
			if !m.expired(e, now, ttl) {
				events = append(events, e)
			}
		}
	}
	m.mu.Unlock()
	var live []Session
	var alive func(string) bool
	if l, ok := m.Sessions.(SessionLister); ok {
		var err error
		if live, err = l.UserSessions(ctx, policy, user); err != nil {
			return UserRecord{}, err
		}
		if live == nil {
			live = []Session{}
		}
	} else if m.Sessions != nil {
		alive = func(id string) bool { return m.Sessions.SessionAlive(policy, id) }
	}
	return BuildUserRecord(policy, user, live, events, now, alive), nil
}

// SessionUser implements Records.
func (m *MemoryRecords) SessionUser(_ context.Context, policy, sessionID string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sids[recKey{policy, sessionID}], nil
}
