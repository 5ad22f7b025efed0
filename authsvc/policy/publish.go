package policy

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
)

// Version is a config source's newest view of one policy: what Compile made of
// it, with the Secrets as they are now.
type Version struct {
	Key string // namespace/name
	// Policy is the compiled policy; nil when it did not compile.
	Policy *Policy
	// Err is why it did not compile (a *CompileError lists the problems).
	Err error
	// Secrets are the Secrets of the policy's namespace as the source reads them
	// now (a deleted one is absent). When the version does not compile, the
	// last good version keeps only the trust these Secrets still hold.
	Secrets map[string]*corev1.Secret
	// Since orders host claims: who came first keeps a host (the object's
	// creation time; serve uses the order of the files).
	Since time.Time
}

// Outcome is what serves for a policy after a publication, and what its
// status says.
type Outcome struct {
	Key string
	// Serving answers the policy's decisions now; nil: nothing does (403).
	Serving *Policy
	// LastGood: the newest version did not compile and Serving is the last
	// good one, narrowed to the keys its Secrets still hold.
	LastGood bool
	// Dropped lists what the last good version stopped trusting because its
	// Secret was deleted or changed, each naming the field and the Secret.
	Dropped []string
	// Note says, when the newest version did not compile, what serves instead
	// (the last good version, what it no longer trusts, or nothing).
	Note string
	// Conflicts are the hosts this policy claims and another one holds.
	Conflicts []HostConflict
	// HostsBefore are the hosts the policy served before this publication.
	HostsBefore []string
	// Ready, Reason and Message are the Ready condition.
	Ready   bool
	Reason  string
	Message string
}

// policyState is what the store knows of one policy.
type policyState struct {
	good    *Policy   // the last version that compiled, as compiled
	serving *Policy   // good, narrowed to what the Secrets hold now; nil: nothing serves
	err     error     // why the newest version did not compile; nil when it did
	dropped []string  // what serving lost against good
	since   time.Time // host claim order
}

// Publish applies the newest versions of some policies and publishes one
// snapshot; the other policies are left as they are.
func (s *Store) Publish(vs ...Version) []Outcome {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applyLocked(vs, false)
}

// Sync applies the newest versions of every policy a source holds (serve's
// reload) and publishes one snapshot; policies not listed are removed.
func (s *Store) Sync(vs []Version) []Outcome {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applyLocked(vs, true)
}

// Remove forgets a policy that no longer exists: its decisions answer 403 at
// once. It returns the hosts it held, whose other claimants may now get them.
func (s *Store) Remove(key string) (hosts []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.metrics.deleted(key)
	st, ok := s.states[key]
	if !ok {
		return nil
	}
	delete(s.states, key)
	if st.serving == nil {
		return nil
	}
	s.publishLocked()
	return st.serving.Hosts
}

// Outcome reports what serves for key and what its status says, as of now
// (a jwksURL may have loaded since the publication).
func (s *Store) Outcome(key string) Outcome {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.outcomeLocked(key)
}

// Ready reports whether the newest version of key serves as written: it
// compiled, holds its hosts and its jwksURL keys have loaded. It is what
// jwtgate_policy_ready says.
func (s *Store) Ready(key string) bool { return s.Outcome(key).Ready }

func (s *Store) applyLocked(vs []Version, replace bool) []Outcome {
	before := make(map[string][]string, len(vs))
	for _, v := range vs {
		if st := s.states[v.Key]; st != nil && st.serving != nil {
			before[v.Key] = st.serving.Hosts
		}
	}
	if replace {
		listed := make(map[string]bool, len(vs))
		for _, v := range vs {
			listed[v.Key] = true
		}
		for key := range s.states {
			if !listed[key] {
				delete(s.states, key)
				s.metrics.deleted(key)
			}
		}
	}
	for i, v := range vs {
		since := v.Since
		if since.IsZero() {
			since = time.Unix(0, 0).Add(time.Duration(i)) // list order
		}
		s.applyOneLocked(v, since)
	}
	s.publishLocked()
	out := make([]Outcome, len(vs))
	for i, v := range vs {
		out[i] = s.outcomeLocked(v.Key)
		out[i].HostsBefore = before[v.Key]
	}
	return out
}

// applyOneLocked keeps the newest version when it compiled; otherwise the
// last good one keeps serving, with only the trust the Secrets still hold.
func (s *Store) applyOneLocked(v Version, since time.Time) {
	st := s.states[v.Key]
	if st == nil {
		st = &policyState{}
		s.states[v.Key] = st
	}
	st.since = since
	if v.Policy != nil {
		st.good, st.serving, st.err, st.dropped = v.Policy, v.Policy, nil, nil
		return
	}
	st.err = v.Err
	if st.err == nil {
		st.err = errors.New("no compiled version")
	}
	reason := "Unknown"
	var ce *CompileError
	if errors.As(v.Err, &ce) && ce.Reason() != "" {
		reason = ce.Reason()
	}
	s.metrics.compileError(v.Key, reason)
	if st.good == nil {
		st.serving, st.dropped = nil, nil
		return
	}
	st.serving, st.dropped = st.good.narrow(v.Secrets)
}

func (s *Store) outcomeLocked(key string) Outcome {
	o := Outcome{Key: key}
	st := s.states[key]
	if st == nil {
		o.Reason, o.Message = v1alpha1.ReasonInvalidSpec, "the policy has not been published"
		return o
	}
	o.Serving, o.Dropped = st.serving, slices.Clone(st.dropped)
	o.Conflicts = slices.Clone(s.conflicts[key])
	if st.err != nil {
		o.LastGood = st.serving != nil
		o.Reason, o.Message = v1alpha1.ReasonInvalidSpec, st.err.Error()
		var ce *CompileError
		if errors.As(st.err, &ce) {
			o.Reason, o.Message = cmp.Or(ce.Reason(), o.Reason), ProblemsMessage(ce.Problems)
		}
		o.Note = servingNote(st)
		o.Message += "; " + o.Note
		return o
	}
	if refused := s.refused[key]; len(refused) > 0 {
		allowed := "no host"
		if ps := s.claims.Patterns(st.serving.Namespace); len(ps) > 0 {
			allowed = strings.Join(ps, ", ")
		}
		quoted := make([]string, len(refused))
		for i, h := range refused {
			quoted[i] = strconv.Quote(h)
		}
		o.Reason = v1alpha1.ReasonHostNotAllowed
		o.Message = fmt.Sprintf("spec.hosts: namespace %s may not claim %s (the controller's --host-claims allow it: %s); this policy is not routed by host (it still answers at /jwtgate/auth/%s): remove those hosts, or ask the platform team to allow them",
			st.serving.Namespace, strings.Join(quoted, ", "), allowed, key)
		return o
	}
	if len(o.Conflicts) > 0 {
		parts := make([]string, len(o.Conflicts))
		for i, c := range o.Conflicts {
			parts[i] = fmt.Sprintf("host %q is held by AuthPolicy %s, which came first", c.Host, c.Holder)
		}
		o.Reason = v1alpha1.ReasonHostConflict
		o.Message = fmt.Sprintf("spec.hosts: %s; this policy is not routed by host (it still answers at /jwtgate/auth/%s): remove the host from one of the policies",
			strings.Join(parts, "; "), key)
		return o
	}
	if unloaded := st.serving.unloadedRemotes(); len(unloaded) > 0 {
		o.Reason = v1alpha1.ReasonJWKSUnreachable
		o.Message = "keys from " + strings.Join(unloaded, ", ") + " have not loaded; the policy is published and refuses tokens those keys would verify until they load"
		return o
	}
	o.Ready, o.Reason = true, v1alpha1.ReasonReady
	o.Message = fmt.Sprintf("generation %d is serving", st.serving.ObjectGen)
	return o
}

// servingNote says what serves while the newest version does not compile.
func servingNote(st *policyState) string {
	switch {
	case st.serving == nil:
		return "no version of this policy has compiled, so nothing serves it: its decisions answer 403"
	case len(st.dropped) == 0:
		return fmt.Sprintf("the last good version (generation %d, with the Secrets as they were then) keeps serving", st.serving.ObjectGen)
	}
	note := fmt.Sprintf("the last good version (generation %d) keeps serving without what its Secrets no longer hold: %s",
		st.serving.ObjectGen, strings.Join(st.dropped, "; "))
	if !st.serving.canVerify() {
		note += "; no key is left, so every token is refused (401)"
	}
	return note
}

// ProblemsMessage lists every problem, each with its field, in one line.
func ProblemsMessage(ps []Problem) string {
	msgs := make([]string, len(ps))
	for i, p := range ps {
		msgs[i] = p.Error()
	}
	return strings.Join(msgs, "; ")
}

// unloadedRemotes lists the jwksURLs whose keys have never loaded.
func (p *Policy) unloadedRemotes() []string {
	var out []string
	for _, r := range p.remotes {
		if r.Current() == nil {
			out = append(out, r.URL())
		}
	}
	return out
}

// canVerify reports whether any key can verify a token: listed keys, the
// policy's own signing keys, or a jwksURL.
func (p *Policy) canVerify() bool {
	return p.listed.Len() > 0 || p.own.Len() > 0 || len(p.remotes) > 0
}
