// Package redisstore keeps sessions in Redis, shared by every replica of
// jwtgate (--redis-url).
//
// It holds live sessions, not a deny-list: a session Redis does not hold is
// over. Every key expires with its session's refresh token, so an eviction, a
// flush or a Redis that restarts empty means users sign in again, never that an
// ended session comes back. Only SHA-256 hashes of refresh tokens are stored.
// Rotation and ending run as Lua scripts, atomic across replicas, with the
// rules of session.Memory (grace period with sibling tokens, reuse after the
// grace period ends the session).
//
// SessionAlive (spec.login.revocation: strict) answers from a local cache of
// session liveness: every end is published on a channel all replicas
// subscribe to, and the cache is revalidated after every reconnection, so an
// ended session is refused by every replica within a second without a Redis
// call per decision. A session the cache does not know costs one Redis lookup
// (LookupTimeout), whose answer is cached.
//
// When Redis cannot be reached, Create, Rotate, EndByToken, End and EndUser
// fail with an error wrapping ErrUnavailable (sign-in and refresh answer 503)
// and change nothing. SessionAlive keeps answering true for the sessions the
// cache knows alive (until their refresh token's end), and false for sessions
// it does not know: it fails closed, because an unknown session cannot be told
// apart from one ended on another replica during the outage, and a strict
// policy asked for exactly that check. The user's browser is sent to sign in,
// which says the service is unavailable; nothing worse than a non-strict
// policy's behavior for sessions this replica saw, and no revoked session let
// through.
//
// Redis 5 or later (tested with 7.0): one server (redis://, rediss://), a
// master found through Sentinel (redis-sentinel://, go-redis's failover
// client, which follows the master's moves) or a Redis Cluster
// (redis-cluster://, go-redis's cluster client); see ParseURL. Every key of a
// policy carries the policy as a hash tag, so a policy's keys share a Cluster
// slot, and every script names the keys it knows as KEYS. Ends are published
// on one channel, which a Cluster forwards to every node. In the Sentinel and
// Cluster modes an end is acknowledged only once a replica holds it
// (runEnding). Use maxmemory-policy noeviction (Redis's default):
// then a full Redis refuses new sessions (session.ErrFull) rather than
// dropping a user's index, which would hide sessions from EndUser. The
// replicas' clocks decide expiry and the grace period, so they must agree
// (NTP) to well under the grace period. The Redis user needs the commands of
// the scripts (EVAL, EVALSHA), PUBLISH, SUBSCRIBE, GET, HGET, HMGET, ZRANGE,
// LRANGE and PING.
package redisstore

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"

	"github.com/jwtgate/jwtgate/authsvc/session"
)

// ErrUnavailable wraps the errors of a Redis that cannot be reached (or
// answers with an error). Sign-in and refresh answer it with 503; nothing was
// changed. It is session.ErrUnavailable, so callers need not know the store.
var ErrUnavailable = session.ErrUnavailable

// Defaults.
const (
	DefaultKeyPrefix     = "jwtgate:"
	DefaultMaxPerUser    = session.DefaultMaxPerUser
	DefaultTimeout       = 3 * time.Second
	DefaultLookupTimeout = 250 * time.Millisecond
	DefaultCacheSize     = 100_000
	DefaultCacheRecheck  = time.Minute
	// Bounds of the sibling and replaced tokens of a session, as session.Memory's.
	maxSiblings = 4
	maxRetired  = 16
)

// Options configure New.
type Options struct {
	// URL is redis://[[user]:password@]host[:port][/db] or rediss:// (TLS), with
	// go-redis's query options (dial_timeout=2s, ...).
	URL string
	// PasswordFile, when set, holds the password (a mounted Secret); it
	// overrides one in URL. A final newline is not part of it.
	PasswordFile string
	// KeyPrefix of every key and channel; "" means DefaultKeyPrefix. Replicas
	// sharing sessions use the same prefix.
	KeyPrefix string
	Logger    *slog.Logger     // nil: no logs
	Now       func() time.Time // the clock of session expiry (tests); nil: time.Now

	Grace         time.Duration // how long a replaced token stays usable; 0: session.DefaultGrace
	MaxPerUser    int           // sessions of one user of one policy; past it the oldest ends; 0: DefaultMaxPerUser
	EventsPerUser int           // token records kept per user; 0: admin.DefaultEventsPerUser
	RecordTTL     time.Duration // how long token records are kept at least; 0: admin.DefaultRecordTTL
	Timeout       time.Duration // of each store operation; 0: DefaultTimeout
	LookupTimeout time.Duration // of SessionAlive's Redis lookup on a cache miss; 0: DefaultLookupTimeout
	CacheSize     int           // sessions the liveness cache holds; 0: DefaultCacheSize
	CacheRecheck  time.Duration // age after which a cached live session is asked again; 0: DefaultCacheRecheck
}

// Store is a session.Store in Redis. It is also an admin.Records and an
// admin.SessionLister. Close it when done.
type Store struct {
	o       Options
	target  Target
	rdb     redis.UniversalClient // *redis.Client (single, sentinel) or *redis.ClusterClient
	log     *slog.Logger          // operational lines
	audit   *slog.Logger          // token records
	channel string
	cache   *liveCache
	lookups singleflight.Group

	healthy       atomic.Bool  // subscribed and resynchronised
	lastLookupLog atomic.Int64 // unix ns of the last failed lookup logged
	ready         chan struct{}
	once          sync.Once
	cancel        context.CancelFunc
	done          chan struct{}

	mu sync.Mutex
	ps *redis.PubSub
}

var _ session.Store = (*Store)(nil)

// New connects to Redis. It fails on a bad URL or password file, and when
// Redis refuses the password or user; a Redis that does not answer yet is
// logged and retried in the background (sign-in fails
// with ErrUnavailable until it answers; decisions do not need it). New waits
// until the store has subscribed to session ends, or until ctx ends, or 3
// seconds.
func New(ctx context.Context, o Options) (*Store, error) {
	if o.URL == "" {
		return nil, errNoURL
	}
	target, err := ParseURL(o.URL)
	if err != nil {
		return nil, err
	}
	if o.PasswordFile != "" {
		b, err := os.ReadFile(o.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("redis password: %w", err)
		}
		pw := strings.TrimRight(string(b), "\r\n")
		if pw == "" {
			return nil, fmt.Errorf("redis password: %s is empty", o.PasswordFile)
		}
		target.Password = pw
	}
	o.KeyPrefix = cmp.Or(o.KeyPrefix, DefaultKeyPrefix)
	o.Grace = cmp.Or(o.Grace, session.DefaultGrace)
	o.MaxPerUser = cmp.Or(o.MaxPerUser, DefaultMaxPerUser)
	o.Timeout = cmp.Or(o.Timeout, DefaultTimeout)
	if target.WaitReplicas > 0 {
		o.Timeout = max(o.Timeout, target.WaitTimeout+2*time.Second) // an end waits for its replicas
	}
	o.LookupTimeout = cmp.Or(o.LookupTimeout, DefaultLookupTimeout)
	o.CacheSize = cmp.Or(o.CacheSize, DefaultCacheSize)
	o.CacheRecheck = cmp.Or(o.CacheRecheck, DefaultCacheRecheck)
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{
		o:       o,
		target:  target,
		rdb:     newClient(target),
		log:     log.With("component", "redis-sessions"),
		audit:   log,
		channel: o.KeyPrefix + "ended",
		cache:   newLiveCache(o.CacheSize),
		ready:   make(chan struct{}),
		done:    make(chan struct{}),
	}
	// A refused password or a missing permission does not mend itself: say so
	// now. A Redis that does not answer yet may come later.
	pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
	err = s.rdb.Ping(pctx).Err()
	pcancel()
	if err != nil && isConfigError(err) {
		_ = s.rdb.Close()
		return nil, fmt.Errorf("redis %s: %w", target, err)
	}
	if err == nil {
		s.checkEviction(ctx)
	}
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	s.ps = s.rdb.Subscribe(lctx, s.channel)
	go s.listen(lctx)

	wait := time.NewTimer(3 * time.Second)
	defer wait.Stop()
	select {
	case <-s.ready:
		s.log.Info("session store: Redis connected", "mode", target.Mode, "url", target.String(), "tls", target.TLS,
			"wait_replicas", target.WaitReplicas)
	case <-ctx.Done():
		s.log.Warn("session store: Redis does not answer yet; sign-in fails until it does", "mode", target.Mode, "url", target.String())
	case <-wait.C:
		s.log.Warn("session store: Redis does not answer yet; sign-in fails until it does", "mode", target.Mode, "url", target.String())
	}
	return s, nil
}

// Close stops the store.
func (s *Store) Close() error {
	s.cancel()
	closePS := func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		_ = s.ps.Close()
	}
	closePS() // ends a receive in progress
	<-s.done
	closePS() // one the listener may have opened meanwhile
	return s.rdb.Close()
}

// Healthy reports whether the store is subscribed to session ends and its
// cache is in step with Redis.
func (s *Store) Healthy() bool { return s.healthy.Load() }

// Ping asks Redis once.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return s.fail("ping", err)
	}
	return nil
}

func (s *Store) now() time.Time {
	if s.o.Now != nil {
		return s.o.Now()
	}
	return time.Now()
}

func (s *Store) prefix(policy string) string { return s.o.KeyPrefix + "{" + policy + "}:" }

func (s *Store) opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.o.Timeout)
}

// fail wraps an error of Redis.
func (s *Store) fail(op string, err error) error {
	if strings.HasPrefix(err.Error(), "OOM ") {
		return fmt.Errorf("%w: %s: %w", session.ErrFull, op, err)
	}
	return fmt.Errorf("%w: redis %s: %w", ErrUnavailable, op, err)
}

// checkEviction warns when Redis may evict keys: an evicted session only signs
// its user out, but an evicted user index hides sessions from EndUser (the
// admin's kill switch). CONFIG may be refused (managed Redis): then nothing is
// said.
func (s *Store) checkEviction(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	v, err := s.rdb.ConfigGet(cctx, "maxmemory-policy").Result()
	if err != nil {
		return
	}
	if p := v["maxmemory-policy"]; p != "" && p != "noeviction" {
		s.log.Warn("session store: Redis evicts keys under memory pressure (maxmemory-policy "+p+"); use noeviction, "+
			"or an eviction may hide sessions from the admin's revocation of a user", "maxmemory_policy", p)
	}
}

// isConfigError tells the errors of a wrong password, user or permission.
func isConfigError(err error) bool {
	msg := err.Error()
	for _, p := range []string{"WRONGPASS", "NOAUTH", "NOPERM", "ERR AUTH", "ERR invalid password", "ERR Client sent AUTH"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// meta is the part of a session written once, at creation.
type meta struct {
	ID      string        `json:"id"`
	Policy  string        `json:"policy"`
	User    string        `json:"user"`
	Roles   []string      `json:"roles,omitempty"`
	TTL     time.Duration `json:"ttl"`
	Created time.Time     `json:"created"`
	// Written by jwtgate versions that end sessions on these; absent in older
	// records (then: no limit, no credential check).
	MaxLifetime time.Duration  `json:"max_lifetime,omitempty"`
	Credential  string         `json:"credential,omitempty"`
	Origin      session.Origin `json:"origin,omitzero"`
}

func (m meta) session() session.Session {
	return session.Session{ID: m.ID, Policy: m.Policy, User: m.User, Roles: m.Roles, TTL: m.TTL, Created: m.Created,
		MaxLifetime: m.MaxLifetime, Credential: m.Credential, Origin: m.Origin}
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func tokenHash(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// wellFormed rejects values that cannot be refresh tokens (session.NewToken)
// before any lookup.
func wellFormed(token string) bool {
	if len(token) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(token)
	return err == nil
}

// Create implements session.Store.
func (s *Store) Create(ctx context.Context, n session.New) (session.Session, string, error) {
	ttlMS := n.TTL.Milliseconds()
	if ttlMS <= 0 {
		return session.Session{}, "", fmt.Errorf("session TTL %v: must be at least a millisecond", n.TTL)
	}
	id, err := session.NewID()
	if err != nil {
		return session.Session{}, "", err
	}
	token, err := session.NewToken()
	if err != nil {
		return session.Session{}, "", err
	}
	now := s.now()
	m := meta{ID: id, Policy: n.Policy, User: n.User, Roles: n.Roles, TTL: n.TTL, Created: now, MaxLifetime: n.MaxLifetime, Credential: n.Credential, Origin: n.Origin}
	mj, err := json.Marshal(m)
	if err != nil {
		return session.Session{}, "", err
	}
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	pfx, h := s.prefix(n.Policy), tokenHash(token)
	ended, err := createScript.Run(ctx, s.rdb, []string{pfx + "s:" + id, pfx + "t:" + h, pfx + "u:" + n.User},
		pfx, n.Policy, s.channel, id, h, ms(now), ttlMS, mj, n.User, s.o.MaxPerUser).StringSlice()
	if err != nil {
		return session.Session{}, "", s.fail("create", err)
	}
	for _, sid := range ended {
		s.cache.setDead(cacheKey(n.Policy, sid))
	}
	sess := m.session()
	sess.Roles = append([]string(nil), n.Roles...)
	sess.Expires = now.Add(n.TTL)
	s.cache.setAlive(cacheKey(n.Policy, id), sess.Expires, now, s.cache.currentEpoch())
	return sess, token, nil
}

// Rotate implements session.Store. With ErrReused it also returns the session
// it ended (ID, User), for the records.
func (s *Store) Rotate(ctx context.Context, policy, refreshToken string) (session.Session, string, error) {
	if !wellFormed(refreshToken) {
		return session.Session{}, "", session.ErrInvalid
	}
	next, err := session.NewToken()
	if err != nil {
		return session.Session{}, "", err
	}
	now := s.now()
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	pfx, h, nh := s.prefix(policy), tokenHash(refreshToken), tokenHash(next)
	res, err := rotateScript.Run(ctx, s.rdb, []string{pfx + "t:" + h, pfx + "t:" + nh},
		pfx, policy, s.channel, h, nh, ms(now), s.o.Grace.Milliseconds(), maxSiblings, maxRetired).StringSlice()
	if err != nil {
		return session.Session{}, "", s.fail("rotate", err)
	}
	switch res[0] {
	case "ok":
		sess, err := decodeSession(res[1:])
		if err != nil {
			return session.Session{}, "", s.fail("rotate", err)
		}
		// The times are the store clock's, exactly, as session.Memory's.
		sess.Refreshed = now
		sess.Expires = now.Add(sess.TTL)
		s.cache.setAlive(cacheKey(policy, sess.ID), sess.Expires, now, s.cache.currentEpoch())
		return sess, next, nil
	case "reused":
		var m meta
		if json.Unmarshal([]byte(res[1]), &m) == nil {
			s.cache.setDead(cacheKey(policy, m.ID))
		}
		// The end of a session a replayed token revealed must not be lost in
		// a failover either (see runEnding). Unconfirmed, the error is both:
		// the handler keeps the records of a reuse and answers 503.
		if err := s.runEnding(ctx, policy, nil, nil).Err(); err != nil {
			return m.session(), "", fmt.Errorf("%w; %w", session.ErrReused, s.fail("end of the session", err))
		}
		return m.session(), "", session.ErrReused
	default:
		return session.Session{}, "", session.ErrInvalid
	}
}

// decodeSession reads meta, refreshed, rotations, expires.
func decodeSession(f []string) (session.Session, error) {
	if len(f) < 4 {
		return session.Session{}, errors.New("short answer from the session script")
	}
	var m meta
	if err := json.Unmarshal([]byte(f[0]), &m); err != nil {
		return session.Session{}, fmt.Errorf("session record: %w", err)
	}
	sess := m.session()
	if r, _ := strconv.ParseInt(f[1], 10, 64); r > 0 {
		sess.Refreshed = time.UnixMilli(r)
	}
	sess.Rotations, _ = strconv.Atoi(f[2])
	if e, _ := strconv.ParseInt(f[3], 10, 64); e > 0 {
		sess.Expires = time.UnixMilli(e)
	}
	return sess, nil
}

// EndByToken implements session.Store.
func (s *Store) EndByToken(ctx context.Context, policy, refreshToken string) (session.Session, error) {
	if !wellFormed(refreshToken) {
		return session.Session{}, session.ErrInvalid
	}
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	pfx, h := s.prefix(policy), tokenHash(refreshToken)
	res, err := s.runEnding(ctx, policy, endByTokenScript, []string{pfx + "t:" + h}, pfx, policy, s.channel, h).StringSlice()
	if err != nil {
		return session.Session{}, s.fail("end", err)
	}
	if res[0] != "ok" {
		return session.Session{}, session.ErrInvalid
	}
	sess, err := decodeSession(res[1:])
	if err != nil {
		return session.Session{}, s.fail("end", err)
	}
	s.cache.setDead(cacheKey(policy, sess.ID))
	return sess, nil
}

// End implements session.Store.
func (s *Store) End(ctx context.Context, policy, sessionID string) error {
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	pfx := s.prefix(policy)
	if err := s.runEnding(ctx, policy, endScript, []string{pfx + "s:" + sessionID}, pfx, policy, s.channel, sessionID).Err(); err != nil {
		return s.fail("end", err)
	}
	s.cache.setDead(cacheKey(policy, sessionID))
	return nil
}

// EndUser implements session.Store.
func (s *Store) EndUser(ctx context.Context, policy, user string) (int, error) {
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	pfx := s.prefix(policy)
	ended, err := s.runEnding(ctx, policy, endUserScript, []string{pfx + "u:" + user}, pfx, policy, s.channel, user).StringSlice()
	if err != nil {
		return 0, s.fail("end user", err)
	}
	for _, sid := range ended {
		s.cache.setDead(cacheKey(policy, sid))
	}
	return len(ended), nil
}

// UserSessions lists the live sessions of a user (admin.SessionLister), oldest
// first.
func (s *Store) UserSessions(ctx context.Context, policy, user string) ([]session.Session, error) {
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	pfx := s.prefix(policy)
	ids, err := s.rdb.ZRange(ctx, pfx+"u:"+user, 0, -1).Result()
	if err != nil {
		return nil, s.fail("list sessions", err)
	}
	cmds := make([]*redis.SliceCmd, len(ids))
	if len(ids) > 0 {
		_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range ids {
				cmds[i] = p.HMGet(ctx, pfx+"s:"+id, "meta", "refreshed", "rotations", "expires")
			}
			return nil
		})
		if err != nil {
			return nil, s.fail("list sessions", err)
		}
	}
	now := s.now()
	out := []session.Session{}
	for _, c := range cmds {
		v := c.Val()
		f := make([]string, len(v))
		ok := len(v) == 4
		for i, x := range v {
			str, isStr := x.(string)
			ok = ok && isStr
			f[i] = str
		}
		if !ok {
			continue
		}
		sess, err := decodeSession(f)
		if err != nil || !now.Before(sess.Expires) {
			continue
		}
		out = append(out, sess)
	}
	return out, nil
}

// redact hides the password of a Redis URL.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

func redactErr(err error, raw string) error {
	u, perr := url.Parse(raw)
	if perr != nil {
		return errors.New("cannot parse it")
	}
	if pw, ok := u.User.Password(); ok && pw != "" && strings.Contains(err.Error(), pw) {
		return errors.New(strings.ReplaceAll(err.Error(), pw, "xxxxx"))
	}
	return err
}

var _ session.OnceStore = (*Store)(nil)

// UseOnce implements session.OnceStore with SET NX: the first replica to
// record a value wins, every later use (on any replica) is refused. Only a
// hash of the value is stored.
func (s *Store) UseOnce(ctx context.Context, policy, value string, until time.Time) (bool, error) {
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	ttl := until.Sub(s.now())
	if ttl < time.Millisecond {
		ttl = time.Millisecond
	}
	ok, err := s.rdb.SetNX(ctx, s.prefix(policy)+"once:"+tokenHash(value), "1", ttl).Result()
	if err != nil {
		return false, s.fail("use-once", err)
	}
	return ok, nil
}
