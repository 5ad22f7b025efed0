// Package standalone runs the decision service from YAML files, without
// Kubernetes: `jwtgate serve -f` and `jwtgate check -f`. Files become the same
// AuthPolicy and Secret values the controller reads, and go through the same
// compile step.
package standalone

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
	"github.com/jwtgate/jwtgate/authsvc/filesource"
	"github.com/jwtgate/jwtgate/authsvc/keys"
	"github.com/jwtgate/jwtgate/authsvc/policy"
)

// Loader compiles the files into the store. The store keeps the last good
// version of each policy when a change to it is invalid (Store.Sync).
type Loader struct {
	Paths    []string
	StateDir string // where signing keys that the files lack are kept; "" turns that off
	Remotes  *keys.Remotes
	Cache    *policy.TokenCache
	Store    *policy.Store
	Log      *slog.Logger

	mu sync.Mutex
}

// Reload reads the files and publishes what compiles. When a file cannot be read
// or parsed, nothing changes: a half-read folder must not delete policies. When a
// policy does not compile, its last good version keeps serving, without the keys
// its Secrets no longer hold. Every problem is returned, with its file and field.
func (l *Loader) Reload() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
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
	versions, problems := Compile(bundle, l.Remotes, l.Cache)
	if l.Log != nil {
		for _, w := range Warnings(bundle, versions) {
			l.Log.Warn("config warning", "warning", w.Error())
		}
	}
	return append(problems, outcomeProblems(bundle, l.Store.Sync(versions))...)
}

// outcomeProblems describes what a publication left short of the files: last
// good versions and what they no longer trust, and host conflicts.
func outcomeProblems(b *filesource.Bundle, outs []policy.Outcome) []error {
	var errs []error
	for _, o := range outs {
		if o.LastGood {
			errs = append(errs, fmt.Errorf("AuthPolicy %s: %s", o.Key, o.Note))
		}
		for _, c := range o.Conflicts {
			errs = append(errs, conflictProblem(b, c))
		}
	}
	return errs
}

// Compile compiles every policy of a bundle into the versions a store
// publishes, in the order of the files. Problems carry the file and field.
func Compile(b *filesource.Bundle, remotes *keys.Remotes, cache *policy.TokenCache) ([]policy.Version, []error) {
	secretsByNS := map[string]map[string]*corev1.Secret{}
	for _, s := range b.Secrets {
		if secretsByNS[s.Namespace] == nil {
			secretsByNS[s.Namespace] = map[string]*corev1.Secret{}
		}
		secretsByNS[s.Namespace][s.Name] = s
	}
	out := make([]policy.Version, 0, len(b.Policies))
	var errs []error
	for _, ap := range b.Policies {
		key := ap.Namespace + "/" + ap.Name
		p, err := policy.Compile(policy.Input{Policy: ap, Secrets: secretsByNS[ap.Namespace], Remotes: remotes, Cache: cache})
		out = append(out, policy.Version{Key: key, Policy: p, Err: err, Secrets: secretsByNS[ap.Namespace]})
		if err != nil {
			errs = append(errs, withLocation(b, ap, err)...)
		}
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
	versions, problems := Compile(bundle, nil, nil)
	errs = append(errs, problems...)
	for _, o := range policy.NewStore().Sync(versions) {
		for _, c := range o.Conflicts {
			errs = append(errs, conflictProblem(bundle, c))
		}
	}
	return errs, Warnings(bundle, versions)
}

// Warnings lists the warnings of the versions that compiled, with their file
// and field, in the order of the bundle.
func Warnings(b *filesource.Bundle, versions []policy.Version) []error {
	var out []error
	for _, v := range versions {
		p := v.Policy
		if p == nil {
			continue
		}
		loc := b.Origin[filesource.Ref{Kind: "AuthPolicy", Namespace: p.Namespace, Name: p.Name}]
		for _, w := range p.Warnings() {
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
	ns, name, _ := strings.Cut(c.Policy, "/")
	loc := b.Origin[filesource.Ref{Kind: "AuthPolicy", Namespace: ns, Name: name}]
	return filesource.Problem{Location: loc, Object: "AuthPolicy " + c.Policy, Field: "spec.hosts",
		Message: fmt.Sprintf("host %q already belongs to AuthPolicy %s: this policy is not host-routed until the conflict is removed", c.Host, c.Holder)}
}
