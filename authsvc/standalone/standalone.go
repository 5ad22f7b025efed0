// Package standalone runs the decision service from YAML files, without
// Kubernetes: `jwtgate serve -f` and `jwtgate check -f`. Files become the same
// AuthPolicy and Secret values the controller reads, and go through the same
// compile step.
package standalone

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"

	corev1 "k8s.io/api/core/v1"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
	"github.com/jwtgate/jwtgate/authsvc/filesource"
	"github.com/jwtgate/jwtgate/authsvc/keys"
	"github.com/jwtgate/jwtgate/authsvc/policy"
)

// Loader compiles the files into the store, keeping the last good version of
// each policy when a change to it is invalid.
type Loader struct {
	Paths    []string
	StateDir string // where signing keys that the files lack are kept; "" turns that off
	Remotes  *keys.Remotes
	Cache    *policy.TokenCache
	Store    *policy.Store
	Log      *slog.Logger

	mu       sync.Mutex
	lastGood map[string]*policy.Policy
}

// Reload reads the files and publishes what compiles. When a file cannot be read
// or parsed, nothing changes: a half-read folder must not delete policies. When a
// policy does not compile, its last good version keeps serving. Every problem is
// returned, with its file and field.
func (l *Loader) Reload() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lastGood == nil {
		l.lastGood = map[string]*policy.Policy{}
	}
	bundle, loadProblems := filesource.Load(l.Paths)
	if len(loadProblems) > 0 {
		errs := make([]error, len(loadProblems))
		for i, p := range loadProblems {
			errs[i] = p
		}
		return errs
	}
	if l.StateDir != "" {
		if err := addStateKeys(bundle, l.StateDir, l.Log); err != nil {
			return []error{err}
		}
	}
	compiled, problems := Compile(bundle, l.Remotes, l.Cache, l.Store.Metrics())
	if l.Log != nil {
		for _, w := range Warnings(bundle, compiled) {
			l.Log.Warn("config warning", "warning", w.Error())
		}
	}
	var errs []error
	var publish []*policy.Policy
	for _, ap := range bundle.Policies {
		key := ap.Namespace + "/" + ap.Name
		l.Store.Metrics().Ready(key, compiled[key] != nil)
		if p := compiled[key]; p != nil {
			publish = append(publish, p)
			l.lastGood[key] = p
			continue
		}
		if old := l.lastGood[key]; old != nil {
			publish = append(publish, old)
			errs = append(errs, fmt.Errorf("AuthPolicy %s: keeping the last good version", key))
		}
	}
	for key := range l.lastGood {
		if !containsPolicy(bundle, key) {
			delete(l.lastGood, key)
			l.Store.Metrics().Deleted(key)
		}
	}
	errs = append(problems, errs...)
	for _, c := range l.Store.Replace(publish) {
		errs = append(errs, conflictProblem(bundle, c))
	}
	return errs
}

func containsPolicy(b *filesource.Bundle, key string) bool {
	for _, ap := range b.Policies {
		if ap.Namespace+"/"+ap.Name == key {
			return true
		}
	}
	return false
}

// Compile compiles every policy of a bundle. Problems carry the file and field.
func Compile(b *filesource.Bundle, remotes *keys.Remotes, cache *policy.TokenCache, metrics *policy.Metrics) (map[string]*policy.Policy, []error) {
	secretsByNS := map[string]map[string]*corev1.Secret{}
	for _, s := range b.Secrets {
		if secretsByNS[s.Namespace] == nil {
			secretsByNS[s.Namespace] = map[string]*corev1.Secret{}
		}
		secretsByNS[s.Namespace][s.Name] = s
	}
	out := map[string]*policy.Policy{}
	var errs []error
	for _, ap := range b.Policies {
		p, err := policy.Compile(policy.Input{Policy: ap, Secrets: secretsByNS[ap.Namespace], Remotes: remotes, Cache: cache})
		if err != nil {
			reason := "Unknown"
			var ce *policy.CompileError
			if errors.As(err, &ce) {
				reason = ce.Reason()
			}
			metrics.CompileError(ap.Namespace+"/"+ap.Name, reason)
			errs = append(errs, withLocation(b, ap, err)...)
			continue
		}
		out[p.Key] = p
	}
	return out, errs
}

// Check reads and compiles the files without serving them, and returns every
// problem: what `jwtgate check` prints.
func Check(paths []string) []error {
	errs, _ := CheckWithWarnings(paths)
	return errs
}

// CheckWithWarnings is Check, plus the warnings of the policies that compile
// (methods that fall through, mixed bcrypt costs): `jwtgate check` prints
// them and still exits 0 when there is no problem.
func CheckWithWarnings(paths []string) (problems, warnings []error) {
	bundle, loadProblems := filesource.Load(paths)
	var errs []error
	for _, p := range loadProblems {
		errs = append(errs, p)
	}
	if bundle == nil {
		return errs, nil
	}
	// A signing Secret that serve would create in its state folder is not a problem.
	addMissingSigningPlaceholders(bundle)
	compiled, compileProblems := Compile(bundle, nil, nil, nil)
	errs = append(errs, compileProblems...)
	warnings = Warnings(bundle, compiled)
	var ps []*policy.Policy
	for _, ap := range bundle.Policies {
		if p := compiled[ap.Namespace+"/"+ap.Name]; p != nil {
			ps = append(ps, p)
		}
	}
	for _, c := range policy.NewStore().Replace(ps) {
		errs = append(errs, conflictProblem(bundle, c))
	}
	return errs, warnings
}

// Warnings lists the warnings of the compiled policies of a bundle, with
// their file and field, in the order of the bundle.
func Warnings(b *filesource.Bundle, compiled map[string]*policy.Policy) []error {
	var out []error
	for _, ap := range b.Policies {
		p := compiled[ap.Namespace+"/"+ap.Name]
		if p == nil {
			continue
		}
		loc := b.Origin[filesource.Ref{Kind: "AuthPolicy", Namespace: ap.Namespace, Name: ap.Name}]
		for _, w := range p.Warnings {
			out = append(out, filesource.Problem{Location: loc, Object: "AuthPolicy " + p.Key, Field: w.Field, Message: w.Message})
		}
	}
	return out
}

func withLocation(b *filesource.Bundle, ap *v1alpha1.AuthPolicy, err error) []error {
	loc := b.Origin[filesource.Ref{Kind: "AuthPolicy", Namespace: ap.Namespace, Name: ap.Name}]
	obj := "AuthPolicy " + ap.Namespace + "/" + ap.Name
	ce, ok := err.(*policy.CompileError)
	if !ok {
		return []error{filesource.Problem{Location: loc, Object: obj, Message: err.Error()}}
	}
	out := make([]error, len(ce.Problems))
	for i, p := range ce.Problems {
		out[i] = filesource.Problem{Location: loc, Object: obj, Field: p.Field, Message: p.Message}
	}
	return out
}

func conflictProblem(b *filesource.Bundle, c policy.HostConflict) error {
	ns, name, _ := cutKey(c.Policy)
	loc := b.Origin[filesource.Ref{Kind: "AuthPolicy", Namespace: ns, Name: name}]
	return filesource.Problem{Location: loc, Object: "AuthPolicy " + c.Policy, Field: "spec.hosts",
		Message: fmt.Sprintf("host %q already belongs to AuthPolicy %s: this policy is not host-routed until the conflict is removed", c.Host, c.Holder)}
}

func cutKey(key string) (string, string, bool) {
	for i := 0; i < len(key); i++ {
		if key[i] == '/' {
			return key[:i], key[i+1:], true
		}
	}
	return "", key, false
}
