package policy

import (
	"cmp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Snapshot is an immutable view of every serving policy. Decisions read one
// snapshot from Store.Load and nothing else.
type Snapshot struct {
	Generation uint64
	Built      time.Time
	byKey      map[string]*Policy
	byHost     map[string]*Policy // exact hosts
	byWildcard map[string]*Policy // "example.com" for "*.example.com"
}

// Policy returns the policy namespace/name.
func (s *Snapshot) Policy(namespace, name string) *Policy {
	return s.byKey[namespace+"/"+name]
}

// PolicyByKey returns the policy "namespace/name".
func (s *Snapshot) PolicyByKey(key string) *Policy { return s.byKey[key] }

// ForHost returns the policy whose hosts hold host (lower case, no port): an exact
// host first, then a "*." wildcard one label deep.
func (s *Snapshot) ForHost(host string) *Policy {
	if p := s.byHost[host]; p != nil {
		return p
	}
	if i := strings.IndexByte(host, '.'); i > 0 {
		return s.byWildcard[host[i+1:]]
	}
	return nil
}

// HostMatches reports whether a lower-case host name (no port) is one of
// patterns: exact, or "*.example.com" one label deep, as spec.hosts and
// allowedRedirectHosts are written.
func HostMatches(host string, patterns []string) bool {
	if host == "" {
		return false
	}
	for _, a := range patterns {
		if rest, ok := strings.CutPrefix(a, "*."); ok {
			label, parent, found := strings.Cut(host, ".")
			if found && label != "" && parent == rest {
				return true
			}
			continue
		}
		if host == a {
			return true
		}
	}
	return false
}

// Len is the number of policies.
func (s *Snapshot) Len() int { return len(s.byKey) }

// Policies lists the policies by key.
func (s *Snapshot) Policies() []*Policy {
	out := make([]*Policy, 0, len(s.byKey))
	for _, p := range s.byKey {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *Policy) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// HostConflict is a host claimed by a policy while an earlier one holds it.
type HostConflict struct {
	Host   string
	Policy string // the one that is not host-routed
	Holder string // the one that keeps the host
}

// Store publishes snapshots. Writers are serialized; readers never block.
type Store struct {
	mu        sync.Mutex
	entries   map[string]storeEntry
	conflicts map[string][]HostConflict // by the policy that lost
	claims    *HostClaims               // nil: any namespace may claim any host
	refused   map[string][]string       // hosts claims refused, by policy
	gen       uint64
	cur       atomic.Pointer[Snapshot]
	onChange  []func(*Snapshot)
	metrics   *Metrics
}

type storeEntry struct {
	p     *Policy
	since time.Time // who came first keeps a host: creation time, then key
}

// NewStore returns a store holding an empty snapshot.
func NewStore() *Store {
	s := &Store{entries: map[string]storeEntry{}}
	s.publishLocked()
	return s
}

// UseMetrics makes the store report jwtgate_policy_ready and
// jwtgate_policy_compile_errors_total in m. Call it before the first
// publication.
func (s *Store) UseMetrics(m *Metrics) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.metrics = m
}

// Metrics returns the metrics given to UseMetrics (nil: none, and its methods
// record nothing).
func (s *Store) Metrics() *Metrics {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.metrics
}

// Load returns the current snapshot.
func (s *Store) Load() *Snapshot { return s.cur.Load() }

// OnChange registers fn to run (synchronously, under the store's writer lock)
// after each publication.
func (s *Store) OnChange(fn func(*Snapshot)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onChange = append(s.onChange, fn)
}

// Replace publishes exactly these policies; earlier ones in the list keep a host
// that later ones also claim. It returns the host conflicts.
func (s *Store) Replace(ps []*Policy) []HostConflict {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entries = make(map[string]storeEntry, len(ps))
	base := time.Unix(0, 0)
	for i, p := range ps {
		s.entries[p.Key] = storeEntry{p: p, since: base.Add(time.Duration(i))}
	}
	s.publishLocked()
	var out []HostConflict
	for _, c := range s.conflicts {
		out = append(out, c...)
	}
	slices.SortFunc(out, func(a, b HostConflict) int {
		return cmp.Or(strings.Compare(a.Policy, b.Policy), strings.Compare(a.Host, b.Host))
	})
	return out
}

// Upsert publishes p (replacing the policy with its key); since orders host
// claims (the creation time of the object).
func (s *Store) Upsert(p *Policy, since time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entries[p.Key] = storeEntry{p: p, since: since}
	s.publishLocked()
}

// Delete removes the policy namespace/name: it stops answering at once.
func (s *Store) Delete(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.entries[key]; !ok {
		return
	}
	delete(s.entries, key)
	s.publishLocked()
}

// SetHostClaims limits which namespaces may claim which hosts, from now on
// (nil: any). A policy claiming a host its namespace may not is not
// host-routed at all and holds none of its hosts; it stays routable by path.
func (s *Store) SetHostClaims(hc *HostClaims) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.claims = hc
	s.publishLocked()
}

// HostClaims returns the rule SetHostClaims set (nil: any namespace, any host).
func (s *Store) HostClaims() *HostClaims {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.claims
}

// RefusedHosts returns the hosts policy key claims that its namespace may not.
func (s *Store) RefusedHosts(key string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.refused[key])
}

// Current returns the serving policy with that key, if any.
func (s *Store) Current(key string) *Policy { return s.Load().byKey[key] }

// Conflicts returns the hosts policy key claims but does not get.
func (s *Store) Conflicts(key string) []HostConflict {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.conflicts[key])
}

func (s *Store) publishLocked() {
	s.gen++
	snap := &Snapshot{
		Generation: s.gen,
		Built:      time.Now(),
		byKey:      make(map[string]*Policy, len(s.entries)),
		byHost:     map[string]*Policy{},
		byWildcard: map[string]*Policy{},
	}
	ordered := make([]storeEntry, 0, len(s.entries))
	for k, e := range s.entries {
		snap.byKey[k] = e.p
		ordered = append(ordered, e)
	}
	slices.SortFunc(ordered, func(a, b storeEntry) int {
		return cmp.Or(a.since.Compare(b.since), strings.Compare(a.p.Key, b.p.Key))
	})
	conflicts := map[string][]HostConflict{}
	refused := map[string][]string{}
	owner := map[string]string{}
	for _, e := range ordered {
		for _, h := range e.p.Hosts {
			if !s.claims.Allows(e.p.Namespace, h) {
				refused[e.p.Key] = append(refused[e.p.Key], h)
			}
		}
		if len(refused[e.p.Key]) > 0 {
			// As for a conflict: not host-routed at all, and it holds no host
			// that an allowed policy could claim.
			continue
		}
		var lost []HostConflict
		for _, h := range e.p.Hosts {
			if o, taken := owner[h]; taken && o != e.p.Key {
				lost = append(lost, HostConflict{Host: h, Policy: e.p.Key, Holder: o})
			}
		}
		if len(lost) > 0 {
			// A policy that loses any host is not host-routed at all, so that a
			// request never lands on half of what its author meant.
			conflicts[e.p.Key] = lost
			continue
		}
		for _, h := range e.p.Hosts {
			owner[h] = e.p.Key
			if rest, ok := strings.CutPrefix(h, "*."); ok {
				snap.byWildcard[rest] = e.p
			} else {
				snap.byHost[h] = e.p
			}
		}
	}
	s.conflicts = conflicts
	s.refused = refused
	s.cur.Store(snap)
	for _, fn := range s.onChange {
		fn(snap)
	}
}

// RemoteURLs is the set of jwksURLs the snapshot's policies use.
func (s *Snapshot) RemoteURLs() map[string]bool {
	out := map[string]bool{}
	for _, p := range s.byKey {
		for _, u := range p.RemoteURLs() {
			out[u] = true
		}
	}
	return out
}
