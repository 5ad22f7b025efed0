package policy

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"time"
	"unsafe"
)

// TokenCache remembers verified tokens so a token seen before costs a hash and a
// map lookup instead of a signature verification. Entries are keyed by the SHA-256
// of the token and the compiled policy (a new compile, e.g. after a key change,
// never sees the old entries), never outlive the token's exp, and are dropped when
// the remote key set that verified them changes. The size is bounded: a full
// shard drops its oldest entry.
type TokenCache struct {
	shards   [cacheShards]cacheShard
	perShard int
}

const cacheShards = 64

type cacheKey struct {
	sum    [sha256.Size]byte
	policy uint64
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[cacheKey]*Identity
	// order holds the keys in the order they were cached, at most perShard
	// of them; once full, order[next] is the oldest, the one a new key
	// replaces. Every key of m is in it (a key dropped by get may linger in
	// it until its turn comes, or twice if cached again: either way it only
	// makes an entry leave early). Eviction is then one delete, not a scan.
	order []cacheKey
	next  int
}

// NewTokenCache makes a cache holding at most about max tokens.
func NewTokenCache(max int) *TokenCache {
	per := max / cacheShards
	if per < 1 {
		per = 1
	}
	c := &TokenCache{perShard: per}
	for i := range c.shards {
		c.shards[i].m = make(map[cacheKey]*Identity)
	}
	return c
}

func tokenKey(token string, policy uint64) cacheKey {
	// The token's bytes are only read: hashing them in place saves a copy per request.
	return cacheKey{sum: sha256.Sum256(unsafe.Slice(unsafe.StringData(token), len(token))), policy: policy} //nolint:gosec // G103: read only, never kept past the call
}

// shard spreads keys by token and policy alike: one token presented to many
// policies (one user across many sites) must not pile into a single shard,
// where the per-shard bound would evict its entries as fast as they come.
func (c *TokenCache) shard(k cacheKey) *cacheShard {
	h := binary.LittleEndian.Uint64(k.sum[:8]) ^ (k.policy * 0x9e3779b97f4a7c15)
	return &c.shards[h%cacheShards]
}

func (c *TokenCache) get(k cacheKey, now time.Time) *Identity {
	s := c.shard(k)
	s.mu.RLock()
	id := s.m[k]
	s.mu.RUnlock()
	if id == nil {
		return nil
	}
	if !now.Before(id.Expires) || (id.remote != nil && id.remote.Generation() != id.remoteGen) {
		s.mu.Lock()
		delete(s.m, k)
		s.mu.Unlock()
		return nil
	}
	return id
}

// put caches id under k; a full shard drops its oldest entry, which is also
// about the first to expire when tokens live alike.
func (c *TokenCache) put(k cacheKey, id *Identity) {
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[k]; !ok {
		if len(s.order) < c.perShard {
			s.order = append(s.order, k)
		} else {
			delete(s.m, s.order[s.next])
			s.order[s.next] = k
			s.next = (s.next + 1) % len(s.order)
		}
	}
	s.m[k] = id
}

// Len is the number of cached tokens.
func (c *TokenCache) Len() int {
	n := 0
	for i := range c.shards {
		c.shards[i].mu.RLock()
		n += len(c.shards[i].m)
		c.shards[i].mu.RUnlock()
	}
	return n
}
