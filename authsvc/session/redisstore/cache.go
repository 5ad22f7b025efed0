package redisstore

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// liveCache remembers which sessions are alive. An entry is alive until its
// expires (then it is asked again, as another replica may have rotated the
// session), or dead for good: an ended session never comes back. Lookups
// started before a resynchronisation (epoch) do not store their answers, and
// a lookup never overwrites a dead entry, so an end published while a lookup
// is in flight is never undone.
type liveCache struct {
	mu    sync.Mutex
	epoch uint64
	m     map[string]cacheEntry
	max   int
}

type cacheEntry struct {
	alive   bool
	expires time.Time // alive entries: the refresh token's end
	checked time.Time // alive entries: when Redis last said so
}

func newLiveCache(max int) *liveCache {
	return &liveCache{m: map[string]cacheEntry{}, max: max}
}

func cacheKey(policy, sid string) string { return policy + "\n" + sid }

func (c *liveCache) get(k string) (cacheEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	return e, ok
}

func (c *liveCache) currentEpoch() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.epoch
}

// bump starts a resynchronisation: answers of lookups in flight are dropped.
func (c *liveCache) bump() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
}

func (c *liveCache) setDead(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.makeRoomLocked(k)
	c.m[k] = cacheEntry{}
}

// setAlive stores a live session unless it is known dead or the cache was
// resynchronised since epoch.
func (c *liveCache) setAlive(k string, expires, checked time.Time, epoch uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch != epoch {
		return
	}
	if e, ok := c.m[k]; ok && !e.alive {
		return
	}
	c.makeRoomLocked(k)
	c.m[k] = cacheEntry{alive: true, expires: expires, checked: checked}
}

// makeRoomLocked drops about an eighth of the entries when the cache is full.
// A dropped entry costs one lookup later (or, with Redis unreachable, a
// refusal).
func (c *liveCache) makeRoomLocked(k string) {
	if _, ok := c.m[k]; ok || len(c.m) < c.max {
		return
	}
	drop := max(1, c.max/8)
	for key := range c.m {
		delete(c.m, key)
		if drop--; drop == 0 {
			break
		}
	}
}

// alive returns the keys of the entries believed alive.
func (c *liveCache) aliveKeys() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var keys []string
	for k, e := range c.m {
		if e.alive {
			keys = append(keys, k)
		}
	}
	return keys
}

// SessionAlive implements session.Store and policy.SessionChecker. It does not
// call Redis for a session the cache knows (see the package documentation);
// with Redis unreachable, unknown sessions are refused.
func (s *Store) SessionAlive(policy, sessionID string) bool {
	if policy == "" || sessionID == "" {
		return false
	}
	k := cacheKey(policy, sessionID)
	now := s.now()
	e, known := s.cache.get(k)
	knownAlive := known && e.alive && now.Before(e.expires)
	switch {
	case known && !e.alive:
		return false
	case knownAlive && now.Sub(e.checked) < s.o.CacheRecheck:
		return true
	case !s.healthy.Load():
		// Redis unreachable: the sessions known alive stay alive until their
		// refresh token's end; unknown ones are refused (fail closed).
		return knownAlive
	}
	alive, err := s.lookup(policy, sessionID)
	if err != nil {
		if last := s.lastLookupLog.Load(); time.Since(time.Unix(0, last)) > 10*time.Second && s.lastLookupLog.CompareAndSwap(last, time.Now().UnixNano()) {
			s.log.Warn("session store: cannot ask Redis whether a session is alive (logged once per 10 s)", "policy", policy, "session", sessionID, "known_alive", knownAlive, "error", err)
		}
		return knownAlive
	}
	return alive
}

// lookup asks Redis whether a session is alive and caches the answer. Lookups
// of one session run once at a time.
func (s *Store) lookup(policy, sessionID string) (bool, error) {
	k := cacheKey(policy, sessionID)
	v, err, _ := s.lookups.Do(k, func() (any, error) {
		epoch := s.cache.currentEpoch()
		ctx, cancel := context.WithTimeout(context.Background(), s.o.LookupTimeout)
		defer cancel()
		exp, err := s.rdb.HGet(ctx, s.prefix(policy)+"s:"+sessionID, "expires").Result()
		now := s.now()
		switch {
		case errors.Is(err, redis.Nil):
			s.cache.setDead(k)
			return false, nil
		case err != nil:
			return false, err
		}
		msExp, err := strconv.ParseInt(exp, 10, 64)
		if err != nil {
			return false, err
		}
		expires := time.UnixMilli(msExp)
		if !now.Before(expires) {
			s.cache.setDead(k)
			return false, nil
		}
		s.cache.setAlive(k, expires, now, epoch)
		return true, nil
	})
	if err != nil {
		return false, err
	}
	return v.(bool), nil
}

// Timing of the subscription.
const (
	idlePing     = 5 * time.Second // a silent subscription is pinged after this
	maxBackoff   = time.Second
	startBackoff = 50 * time.Millisecond
)

// listen follows the channel of session ends; after every (re)subscription it
// resynchronises the cache before trusting it again.
func (s *Store) listen(ctx context.Context) {
	defer close(s.done)
	backoff := startBackoff
	pinged := false
	down := false
	// retry marks the store down (logging once, with why), drops the
	// subscription and waits before the next one; false when ctx ended.
	retry := func(msg string, err error) bool {
		if !down {
			down = true
			s.healthy.Store(false)
			s.log.Warn(msg, "error", err)
		}
		s.resubscribe(ctx)
		if !sleep(ctx, backoff) {
			return false
		}
		backoff = min(2*backoff, maxBackoff)
		return true
	}
	for {
		s.mu.Lock()
		ps := s.ps
		s.mu.Unlock()
		msg, err := ps.ReceiveTimeout(ctx, idlePing)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !pinged {
				// Quiet: make sure the connection is still there.
				pinged = true
				if err := ps.Ping(ctx); err == nil {
					continue
				}
			}
			// A broken connection, or a ping not answered: start afresh.
			pinged = false
			if !retry("session store: lost the Redis connection; strict session checks answer from the local cache, sign-in and refresh fail until it is back", err) {
				return
			}
			continue
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind != "subscribe" {
				continue
			}
			if err := s.resync(ctx); err != nil {
				if !retry("session store: cannot resynchronise the session cache with Redis", err) {
					return
				}
				continue
			}
			backoff = startBackoff
			s.healthy.Store(true)
			if down {
				down = false
				s.log.Info("session store: Redis is back; session cache resynchronised")
			}
			s.once.Do(func() { close(s.ready) })
		case *redis.Message:
			policy, sid, ok := strings.Cut(m.Payload, "\n")
			if ok {
				s.cache.setDead(cacheKey(policy, sid))
			}
		}
	}
}

// resubscribe replaces the subscription: its next receive dials afresh.
func (s *Store) resubscribe(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.ps.Close()
	s.ps = s.rdb.Subscribe(ctx, s.channel)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// resync revalidates every session the cache believes alive, after a
// (re)subscription: ends published while this replica was not subscribed are
// found, and sessions a restarted Redis lost are over.
func (s *Store) resync(ctx context.Context) error {
	s.cache.bump()
	epoch := s.cache.currentEpoch()
	keys := s.cache.aliveKeys()
	const chunk = 512
	for len(keys) > 0 {
		part := keys[:min(chunk, len(keys))]
		keys = keys[len(part):]
		cctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
		cmds := make([]*redis.StringCmd, len(part))
		_, err := s.rdb.Pipelined(cctx, func(p redis.Pipeliner) error {
			for i, k := range part {
				policy, sid, _ := strings.Cut(k, "\n")
				cmds[i] = p.HGet(cctx, s.prefix(policy)+"s:"+sid, "expires")
			}
			return nil
		})
		cancel()
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		now := s.now()
		for i, k := range part {
			v, err := cmds[i].Result()
			if err != nil {
				if errors.Is(err, redis.Nil) {
					s.cache.setDead(k)
					continue
				}
				return err
			}
			msExp, err := strconv.ParseInt(v, 10, 64)
			if err != nil || !now.Before(time.UnixMilli(msExp)) {
				s.cache.setDead(k)
				continue
			}
			s.cache.setAlive(k, time.UnixMilli(msExp), now, epoch)
		}
	}
	return nil
}
