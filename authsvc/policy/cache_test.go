package policy

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"
)

func testCacheKey(i uint64) cacheKey {
	var k cacheKey
	binary.LittleEndian.PutUint64(k.sum[:], i*0x9e3779b97f4a7c15)
	binary.LittleEndian.PutUint64(k.sum[8:], i)
	return k
}

// The cache holds at most its size, however many tokens come, keeps the ones
// just verified, and never answers with an expired identity.
func TestTokenCacheBounded(t *testing.T) {
	const size = 256
	c := NewTokenCache(size)
	live := &Identity{Subject: "alice", Expires: testNow.Add(time.Hour)}
	for i := range uint64(100 * size) {
		c.put(testCacheKey(i), live)
		c.put(testCacheKey(i), live) // the same token twice (two misses at once)
		if n := c.Len(); n > size {
			t.Fatalf("after %d tokens the cache holds %d, more than %d", i+1, n, size)
		}
	}
	if c.get(testCacheKey(100*size-1), testNow) != live {
		t.Fatal("the token verified last is not cached")
	}
	expired := &Identity{Subject: "bob", Expires: testNow.Add(time.Minute)}
	c.put(testCacheKey(1<<40), expired)
	if c.get(testCacheKey(1<<40), testNow.Add(time.Minute)) != nil {
		t.Fatal("an expired identity came out of the cache")
	}
	// An entry dropped on get (expired) and cached again later still counts once.
	for i := range uint64(10 * size) {
		k := testCacheKey(1<<41 + i%8)
		c.put(k, expired)
		c.get(k, testNow.Add(time.Minute))
		c.put(k, live)
	}
	if n := c.Len(); n > size {
		t.Fatalf("the cache holds %d, more than %d", n, size)
	}
}

// BenchmarkTokenCachePut is the insert of a cache miss into a full cache, as
// every request of run.sh's scenario c (unique tokens) makes: the shard's
// lock, the eviction scan and the insert. The identities are separate
// allocations, as in a running server.
func BenchmarkTokenCachePut(b *testing.B) {
	for _, size := range []int{64, 65536} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			c := NewTokenCache(size)
			key := testCacheKey
			for i := range uint64(2 * size) {
				c.put(key(i), &Identity{Subject: "alice", Expires: testNow.Add(time.Hour)})
			}
			ids := make([]*Identity, 1024)
			for i := range ids {
				ids[i] = &Identity{Subject: "alice", Expires: testNow.Add(time.Hour)}
			}
			i := uint64(2 * size)
			b.ReportAllocs()
			for b.Loop() {
				c.put(key(i), ids[i%1024])
				i++
			}
		})
	}
}
