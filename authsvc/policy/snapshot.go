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
// Both config sources (standalone.Loader for serve, the controller's
// reconciler) write through Publish, Sync and Remove (publish.go), which own
// the last good version of each policy, host conflicts and the policy metrics.
type Store struct {
	mu        sync.Mutex
	states    map[string]*policyState   // every policy a source told of, serving or not
	conflicts map[string][]HostConflict // by the policy that lost
	claims    *HostClaims               // nil: any namespace may claim any host
	refused   map[string][]string       // hosts claims refused, by policy
	gen       uint64
	cur       atomic.Pointer[Snapshot]
	onChange  []func(*Snapshot)
	metrics   *Metrics
}

// NewStore returns a store holding an empty snapshot.
func NewStore() *Store {
	s := &Store{states: map[string]*policyState{}}
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
	m.attach(s)
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

// Replace publishes exactly these policies, all compiled; earlier ones in the
// list keep a host that later ones also claim. It returns the host conflicts.
func (s *Store) Replace(ps []*Policy) []HostConflict {
	vs := make([]Version, len(ps))
	for i, p := range ps {
		vs[i] = Version{Key: p.Key, Policy: p}
	}
	var out []HostConflict
	for _, o := range s.Sync(vs) {
		out = append(out, o.Conflicts...)
	}
	return out
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

// RefusedHosts returns the hosts policy key claims that its namespace may not.
func (s *Store) RefusedHosts(key string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.refused[key])
}

// Current returns the serving policy with that key, if any.
func (s *Store) Current(key string) *Policy { return s.Load().byKey[key] }

func (s *Store) publishLocked() {
	s.gen++
	snap := &Snapshot{
		Generation: s.gen,
		Built:      time.Now(),
		byKey:      make(map[string]*Policy, len(s.states)),
		byHost:     map[string]*Policy{},
		byWildcard: map[string]*Policy{},
	}
	ordered := make([]*policyState, 0, len(s.states))
	for k, st := range s.states {
		if st.serving == nil {
			continue
		}
		snap.byKey[k] = st.serving
		ordered = append(ordered, st)
	}
	slices.SortFunc(ordered, func(a, b *policyState) int {
		return cmp.Or(a.since.Compare(b.since), strings.Compare(a.serving.Key, b.serving.Key))
	})
	conflicts := map[string][]HostConflict{}
	refused := map[string][]string{}
	owner := map[string]string{}
	for _, st := range ordered {
		p := st.serving
		for _, h := range p.Hosts {
			if !s.claims.Allows(p.Namespace, h) {
				refused[p.Key] = append(refused[p.Key], h)
			}
		}
		if len(refused[p.Key]) > 0 {
			// As for a conflict: not host-routed at all, and it holds no host
			// that an allowed policy could claim.
			continue
		}
		var lost []HostConflict
		for _, h := range p.Hosts {
			if o, taken := owner[h]; taken && o != p.Key {
				lost = append(lost, HostConflict{Host: h, Policy: p.Key, Holder: o})
			}
		}
		if len(lost) > 0 {
			// A policy that loses any host is not host-routed at all, so that a
			// request never lands on half of what its author meant.
			conflicts[p.Key] = lost
			continue
		}
		for _, h := range p.Hosts {
			owner[h] = p.Key
			if rest, ok := strings.CutPrefix(h, "*."); ok {
				snap.byWildcard[rest] = p
			} else {
				snap.byHost[h] = p
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
