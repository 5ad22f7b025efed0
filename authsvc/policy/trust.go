package policy

import (
	"crypto/sha256"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/jwtgate/jwtgate/authsvc/keys"
)

// trust is one piece of Secret material a compiled policy trusts: a
// verification key of spec.jwt.keys, the API keys, the sign-in signing key,
// the users of password sign-in, or the OpenID client secret.
// It remembers a digest of the data it was compiled from, so that a last good
// version can drop what the Secrets no longer hold (narrow).
type trust struct {
	field  string // spec.jwt.keys[0].secretRef, spec.apiKeys.secretRef, spec.login.signingKeySecretRef, ...
	secret string // the Secret's name, in the policy's namespace
	key    string // the Secret's key; "" for the whole Secret (the signing key)
	sum    [sha256.Size]byte
	kind   trustKind
	// trustVerify: the parsed keys of the Secret key (shared, kept alive
	// here) and those of them it added to the listed set.
	parsed *parsedKeys
	set    *keys.Set
}

type trustKind int

const (
	trustVerify trustKind = iota
	trustAPIKeys
	trustSigning
	trustUsers
	trustOIDCClient
)

// secretKeySum is the digest of one key of a Secret.
func secretKeySum(data []byte) [sha256.Size]byte { return sha256.Sum256(data) }

// secretSum is the digest of a whole Secret's data, keys in order.
func secretSum(s *corev1.Secret) [sha256.Size]byte {
	data := secretData(s)
	names := make([]string, 0, len(data))
	for k := range data {
		names = append(names, k)
	}
	slices.Sort(names)
	h := sha256.New()
	for _, k := range names {
		_, _ = fmt.Fprintf(h, "%d:%s%d:", len(k), k, len(data[k]))
		h.Write(data[k])
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// held reports whether the Secrets still hold exactly what t was compiled from.
func (t trust) held(secrets map[string]*corev1.Secret) bool {
	s := secrets[t.secret]
	if s == nil {
		return false
	}
	if t.key == "" {
		return secretSum(s) == t.sum
	}
	data, ok := secretData(s)[t.key]
	return ok && secretKeySum(data) == t.sum
}

func (t trust) describe() string {
	what := "the keys of " + t.field
	switch t.kind {
	case trustAPIKeys:
		what = "the API keys of " + t.field
	case trustSigning:
		what = "the sign-in signing key of " + t.field + " (sign-in is off, and the tokens it signed are refused)"
	case trustUsers:
		what = "the users of " + t.field + " (password sign-in is off, and their sessions end at their next renewal)"
	case trustOIDCClient:
		what = "the OpenID client secret of " + t.field + " (sign-in at the provider is off)"
	}
	ref := "secret " + t.secret
	if t.key != "" {
		ref += fmt.Sprintf(" key %q", t.key)
	}
	return what + " (" + ref + " was deleted or changed)"
}

// narrow returns the policy with only the trust that secrets still hold: a key
// whose Secret was deleted, or whose data changed or no longer parses, stops
// verifying. The last good version of a policy never trusts more than the
// Secrets hold now. It returns p itself when nothing was dropped.
func (p *Policy) narrow(secrets map[string]*corev1.Secret) (*Policy, []string) {
	var dropped []string
	var keep []trust
	for _, t := range p.trusts {
		if t.held(secrets) {
			keep = append(keep, t)
			continue
		}
		dropped = append(dropped, t.describe())
	}
	if len(dropped) == 0 {
		return p, nil
	}
	np := *p
	np.id = compileSeq.Add(1) // a new token-cache key: nothing verified before is reused
	np.trusts = keep
	var listed []keys.Key
	held := map[trustKind]bool{}
	for _, t := range keep {
		held[t.kind] = true
		if t.kind == trustVerify {
			listed = append(listed, t.set.Keys()...)
		}
	}
	np.listed = sharedSet(listed)
	if !held[trustAPIKeys] {
		np.apiKeys = nil
	}
	if np.Login != nil {
		l := *np.Login // p's Login is shared with the last good version: never written
		if !held[trustUsers] {
			l.Users = nil
		}
		if !held[trustOIDCClient] && l.OIDC != nil && l.OIDC.ClientSecret != "" {
			l.OIDC = nil
		}
		np.Login = &l
		if !held[trustSigning] {
			np.Login = nil
			np.own = sharedSet(nil)
		}
	}
	return &np, dropped
}
