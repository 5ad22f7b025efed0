package policy

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	corev1 "k8s.io/api/core/v1"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
	"github.com/jwtgate/jwtgate/authsvc/keys"
	"github.com/jwtgate/jwtgate/authsvc/users"
)

// Defaults of the AuthPolicy fields that have one (their api/v1alpha1 docs say so).
const (
	DefaultLeeway          = 30 * time.Second
	MaxLeeway              = 5 * time.Minute
	DefaultRolesClaim      = "roles"
	DefaultAPIKeyHeader    = "X-API-Key" //nolint:gosec // G101: a header name, not a credential
	DefaultAccessTokenTTL  = 5 * time.Minute
	DefaultRefreshTokenTTL = 336 * time.Hour
	// DefaultSessionMaxLifetime: renewal stops 30 days after the sign-in.
	DefaultSessionMaxLifetime = 720 * time.Hour
	AccessCookie              = "jwtgate_access"
	RefreshCookie             = "jwtgate_refresh"
	// MaxTokenSize: a token over 16 KiB is refused before parsing.
	MaxTokenSize = 16 << 10
	// maxCandidateKeys bounds the keys one token without kid is tried against.
	maxCandidateKeys = 8
)

// Input is everything one policy compiles from: the object and the Secrets of its
// namespace that it references, whichever source (files or the API) they came from.
type Input struct {
	Policy *v1alpha1.AuthPolicy
	// Secrets by name, in the policy's namespace. A name that is absent is a Secret
	// that does not exist.
	Secrets map[string]*corev1.Secret
	// Remotes fetches jwksURL key sets. Nil: jwksURL keys are checked for form only
	// and never used (jwtgate check).
	Remotes *keys.Remotes
	// Cache holds verified tokens across requests; nil turns caching off.
	Cache *TokenCache
}

// Policy is a compiled, immutable AuthPolicy: everything a decision needs, with no
// reference back to the objects it came from.
type Policy struct {
	// What a cached decision reads comes first, in the policy's first cache
	// line (the struct is 320 bytes, a size class whose objects start on a
	// line): a policy the CPU has not seen lately then costs that line and
	// its shape, which policies of one template share.
	shape *policyShape // rules, token sources, forwarded headers; shared by policies that say the same
	cache *TokenCache
	id    uint64 // unique per compile: the token cache key
	slot  *Slot  // see Slot; shared by the narrowed copies of this compile
	Key   string // namespace/name
	// Login is set when the policy signs people in.
	Login   *Login
	apiKeys *apiKeyTable

	Namespace, Name string // Key's two parts
	Hosts           []string
	ObjectGen       int64 // metadata.generation it was compiled from

	algs      []string // spec.jwt.algorithms
	listed    *keys.Set
	own       *keys.Set
	remotes   []*keys.Remote
	issuer    string
	audiences []string
	leeway    time.Duration

	slots   claimSlots // claim paths the policy reads, by slot (the shape's)
	forward []forwardClaim

	trusts []trust // the Secret material it trusts, for narrow
}

// Warnings are things that compile but are likely not what was meant
// (methods that fall through, mixed bcrypt costs): `check` prints them, serve
// logs them, the controller sets the Warnings condition.
func (p *Policy) Warnings() []Problem {
	if p.Login == nil || len(p.Login.warnings) == 0 {
		return slices.Clip(p.shape.warnings) // shared by the policies of the shape: an append copies
	}
	return append(slices.Clip(p.shape.warnings), p.Login.warnings...)
}

// Slot is what another package keeps beside one compiled policy: the door
// package's decision counters, resolved once per compile, so that counting a
// decision costs a pointer load and not a label lookup. policy never reads it.
type Slot struct{ atomic.Value }

// Slot is the policy's Slot (nil for a Policy that Compile did not make).
func (p *Policy) Slot() *Slot { return p.slot }

// Login is the compiled spec.login.
type Login struct {
	Issuer     string
	Audience   []string // <namespace>/<name>, then spec.jwt.audiences
	AccessTTL  time.Duration
	RefreshTTL time.Duration
	// SessionMaxLifetime is how long after its sign-in a session may still be
	// renewed (spec.login.sessionMaxLifetime).
	SessionMaxLifetime   time.Duration
	Cookie               Cookie
	AllowedRedirectHosts []string
	Revocation           v1alpha1.Revocation
	RolesClaim           string
	Signer               keys.Signer
	VerifyKeys           []keys.Key // public keys published at /jwtgate/jwks.json
	Users                *users.Table
	// OIDC is set when people may sign in at an OpenID provider.
	OIDC *OIDC
	// CSRFKey signs the sign-in form's CSRF tokens. It is derived from the
	// signing key, so every replica accepts the same forms without another
	// shared secret, and a new signing key (even under the same kid) makes a
	// new one.
	CSRFKey []byte

	warnings []Problem // the policy's own, beside its shape's (Policy.Warnings)
}

// Cookie holds the attributes of the cookies the policy sets.
type Cookie struct {
	Domain   string
	Secure   bool
	SameSite http.SameSite
}

type tokenSource struct {
	header string // canonical header name, or "" for a cookie
	prefix string
	cookie string
}

type forwardClaim struct {
	header string // canonical
	lower  string // lower case, as HTTP/2 and Envoy's gRPC answers spell it
	slot   int
	json   bool // format: json
}

var compileSeq atomic.Uint64

// rolesSlot is the claim slot of the roles claim: Compile registers it first.
const rolesSlot = 0

// Compile validates a policy and its Secrets and builds the immutable form that
// decisions read. It returns every problem found, each naming its field.
func Compile(in Input) (*Policy, error) {
	ap := in.Policy
	key := ap.Namespace + "/" + ap.Name
	p := &Policy{
		Namespace: key[:len(ap.Namespace)],
		Name:      key[len(ap.Namespace)+1:],
		Key:       key,
		ObjectGen: ap.Generation,
		id:        compileSeq.Add(1),
		cache:     in.Cache,
		leeway:    DefaultLeeway,
		slot:      new(Slot),
	}
	var errs problems
	spec := &ap.Spec
	if spec.JWT == nil && spec.Login == nil {
		errs.add("spec", v1alpha1.ReasonInvalidSpec, "set jwt, login, or both: without either no token can be verified")
	}
	p.Hosts = compileHostsField(spec.Hosts, "spec.hosts", &errs)
	secrets := secretReader{ns: ap.Namespace, secrets: in.Secrets, errs: &errs}

	rolesClaim := spec.RolesClaim
	if rolesClaim == "" {
		rolesClaim = DefaultRolesClaim
	}
	if spec.JWT != nil {
		compileJWT(p, spec.JWT, secrets, in.Remotes, &errs)
	}
	p.shape = compileShape(spec, rolesClaim, &errs)
	p.slots, p.forward = p.shape.slots, p.shape.forward
	if spec.APIKeys != nil {
		compileAPIKeys(p, spec.APIKeys, rolesClaim, secrets, &errs)
	}
	if spec.Login != nil {
		compileSignIn(p, spec, rolesClaim, secrets, &errs)
	}
	if p.listed == nil {
		p.listed = sharedSet(nil)
	}
	if p.own == nil {
		p.own = sharedSet(nil)
	}
	if len(errs) > 0 {
		return nil, &CompileError{Policy: p.Key, Problems: errs}
	}
	return p, nil
}

// claimSlots are the claim paths a policy (or its OIDC sign-in) reads, each
// resolved once per token into its slot.
type claimSlots []string

// of returns the slot of a claim path, adding it when new.
func (s *claimSlots) of(name string) int {
	if i := slices.Index(*s, name); i >= 0 {
		return i
	}
	*s = append(*s, name)
	return len(*s) - 1
}

// compileAPIKeys compiles spec.apiKeys: the header, and the keys of its Secret,
// each with the identity a request presenting it gets (built once, here, after
// the policy's claim slots are known).
func compileAPIKeys(p *Policy, spec *v1alpha1.APIKeys, rolesClaim string, secrets secretReader, errs *problems) {
	header := spec.Header
	if header == "" {
		header = DefaultAPIKeyHeader
	}
	if !validHeaderName(header) {
		errs.add("spec.apiKeys.header", v1alpha1.ReasonInvalidSpec, "%q is not a valid header name", header)
	}
	data, ok := secrets.key("spec.apiKeys.secretRef", spec.SecretRef)
	if !ok {
		return
	}
	t, lineErrs := parseAPIKeys(data)
	for _, le := range lineErrs {
		errs.add("spec.apiKeys.secretRef", v1alpha1.ReasonAPIKeysInvalid, "secret %s/%s key %q: %s", p.Namespace, spec.SecretRef.Name, spec.SecretRef.Key, le)
	}
	for i := range t.keys {
		k := &t.keys[i]
		roles := make([]any, len(k.roles))
		for j, r := range k.roles {
			roles[j] = r
		}
		k.identity = p.newIdentity(map[string]any{"sub": k.name, rolesClaim: roles})
		k.identity.APIKey = true
	}
	t.header = http.CanonicalHeaderKey(header)
	p.apiKeys = t
	p.trusts = append(p.trusts, trust{field: "spec.apiKeys.secretRef", secret: spec.SecretRef.Name, key: spec.SecretRef.Key, sum: secretKeySum(data), kind: trustAPIKeys})
}

// compileSignIn compiles spec.login, warns about mixed bcrypt costs, and builds
// the key set of the policy's own tokens: its signing keys, each verifying only
// the signing algorithm.
func compileSignIn(p *Policy, spec *v1alpha1.AuthPolicySpec, rolesClaim string, secrets secretReader, errs *problems) {
	p.Login = compileLogin(p, spec, rolesClaim, secrets, errs)
	if p.Login == nil {
		return
	}
	if costs := p.Login.Users.Costs(); len(costs) > 1 {
		p.Login.warnings = append(p.Login.warnings, Problem{Field: "spec.login.usersSecretRef", Reason: v1alpha1.ReasonMixedBcryptCosts,
			Message: fmt.Sprintf("secret %s/%s key %q mixes bcrypt costs %s: a sign-in for an unknown name takes as long as one of cost %d, so users of lower cost can be told apart by timing; make every hash with the same cost (jwtgate hash-password --cost %d)",
				p.Namespace, spec.Login.UsersSecretRef.Name, spec.Login.UsersSecretRef.Key, joinInts(costs), costs[len(costs)-1], costs[len(costs)-1])})
	}
	own := slices.Clone(p.Login.VerifyKeys)
	for i := range own {
		own[i].Algs = []jwa.SignatureAlgorithm{p.Login.Signer.Alg}
	}
	p.own = sharedSet(own)
}

func validHost(h string) bool {
	h = strings.TrimPrefix(h, "*.")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

func validHeaderName(h string) bool {
	if h == "" || len(h) > 256 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_|~", c) >= 0) {
			return false
		}
	}
	return true
}

var allowedAlgorithms = []string{"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

func compileJWT(p *Policy, j *v1alpha1.JWTSpec, secrets secretReader, remotes *keys.Remotes, errs *problems) {
	if len(j.Algorithms) == 0 {
		errs.add("spec.jwt.algorithms", v1alpha1.ReasonInvalidSpec, "list the algorithms tokens may be signed with, e.g. [RS256]")
	}
	for i, a := range j.Algorithms {
		if !slices.Contains(allowedAlgorithms, string(a)) {
			hint := ""
			if strings.EqualFold(string(a), "none") {
				hint = ": unsigned tokens are never accepted"
			}
			errs.add(fmt.Sprintf("spec.jwt.algorithms[%d]", i), v1alpha1.ReasonInvalidSpec, "%q is not an accepted algorithm%s; use one of %s", a, hint, strings.Join(allowedAlgorithms, ", "))
			continue
		}
		p.algs = append(p.algs, allowedAlgorithms[slices.Index(allowedAlgorithms, string(a))])
	}
	p.issuer = intern(j.Issuer)
	p.audiences = make([]string, len(j.Audiences))
	for i, a := range j.Audiences {
		p.audiences[i] = intern(a)
	}
	if j.Leeway != nil {
		if j.Leeway.Duration < 0 || j.Leeway.Duration > MaxLeeway {
			errs.add("spec.jwt.leeway", v1alpha1.ReasonInvalidSpec, "%s is out of range: use 0s to %s", j.Leeway.Duration, MaxLeeway)
		} else {
			p.leeway = j.Leeway.Duration
		}
	}
	var listed []keys.Key
	for i, ks := range j.Keys {
		field := fmt.Sprintf("spec.jwt.keys[%d]", i)
		switch {
		case ks.SecretRef != nil && ks.JWKSURL != "":
			errs.add(field, v1alpha1.ReasonInvalidSpec, "set exactly one of secretRef or jwksURL")
		case ks.SecretRef != nil:
			listed = append(listed, compileSecretKeys(p, field, ks, secrets, errs)...)
		case ks.JWKSURL != "":
			compileJWKSURL(p, field, ks, remotes, errs)
		default:
			errs.add(field, v1alpha1.ReasonInvalidSpec, "set exactly one of secretRef or jwksURL")
		}
	}
	p.listed = sharedSet(listed)
}

// compileSecretKeys parses the verification keys of a spec.jwt.keys[] Secret
// and returns those that verify one of spec.jwt.algorithms, each narrowed to
// them. The policy trusts the Secret key as it is now.
func compileSecretKeys(p *Policy, field string, ks v1alpha1.KeySource, secrets secretReader, errs *problems) []keys.Key {
	data, ok := secrets.key(field+".secretRef", *ks.SecretRef)
	if !ok {
		return nil
	}
	switch ks.Encoding {
	case "", v1alpha1.KeyEncodingUTF8, v1alpha1.KeyEncodingHex, v1alpha1.KeyEncodingBase64:
	default:
		errs.add(field+".encoding", v1alpha1.ReasonInvalidSpec, "%q is not an encoding: use utf8, hex or base64", ks.Encoding)
		return nil
	}
	parsed, err := parseVerificationShared(data, keys.Encoding(ks.Encoding))
	if err != nil {
		errs.add(field+".secretRef", v1alpha1.ReasonKeyInvalid, "secret %s/%s key %q: %v", p.Namespace, ks.SecretRef.Name, ks.SecretRef.Key, err)
		return nil
	}
	var listed []keys.Key
	refused := func(a jwa.SignatureAlgorithm) bool { return !slices.Contains(p.algs, a.String()) }
	for _, k := range parsed.keys {
		if slices.ContainsFunc(k.Algs, refused) {
			k.Algs = slices.DeleteFunc(slices.Clone(k.Algs), refused)
		}
		if len(k.Algs) > 0 {
			listed = append(listed, k)
		}
	}
	// The trust keeps the shared parsed keys alive, and its narrowed keys are
	// a shared set too: policies that list the same key hold no copy of it.
	p.trusts = append(p.trusts, trust{field: intern(field + ".secretRef"), secret: intern(ks.SecretRef.Name), key: intern(ks.SecretRef.Key),
		sum: secretKeySum(data), kind: trustVerify, parsed: parsed, set: sharedSet(listed)})
	if len(listed) == 0 {
		errs.add(field+".secretRef", v1alpha1.ReasonKeyInvalid, "secret %s/%s key %q: no key in it fits spec.jwt.algorithms %v (an RSA key verifies RS*/PS*, an EC key ES*, Ed25519 EdDSA, an HMAC secret HS*)", p.Namespace, ks.SecretRef.Name, ks.SecretRef.Key, p.algs)
	}
	return listed
}

// compileJWKSURL checks a spec.jwt.keys[] jwksURL and adds its remote key set,
// fetched in the background by remotes (nil: checked for form only, as `jwtgate check` does).
func compileJWKSURL(p *Policy, field string, ks v1alpha1.KeySource, remotes *keys.Remotes, errs *problems) {
	if err := keys.CheckURL(ks.JWKSURL); err != nil {
		errs.add(field+".jwksURL", v1alpha1.ReasonInvalidSpec, "%v", err)
		return
	}
	if ks.Encoding != "" {
		errs.add(field+".encoding", v1alpha1.ReasonInvalidSpec, "encoding applies to secretRef keys only")
	}
	if remotes == nil {
		return
	}
	r, err := remotes.Get(ks.JWKSURL)
	if err != nil {
		errs.add(field+".jwksURL", v1alpha1.ReasonJWKSUnreachable, "%v", err)
		return
	}
	p.remotes = append(p.remotes, r)
}

func compileLogin(p *Policy, spec *v1alpha1.AuthPolicySpec, rolesClaim string, secrets secretReader, errs *problems) *Login {
	l := spec.Login
	if len(spec.Hosts) == 0 {
		errs.add("spec.hosts", v1alpha1.ReasonInvalidSpec, "login requires hosts: the sign-in pages are chosen by the request's host")
		return nil
	}
	out := &Login{
		Issuer:     l.Issuer,
		Audience:   append([]string{p.Key}, p.audiences...),
		AccessTTL:  DefaultAccessTokenTTL,
		RefreshTTL: DefaultRefreshTokenTTL,
		Cookie:     Cookie{Secure: true, SameSite: http.SameSiteLaxMode},

		SessionMaxLifetime: DefaultSessionMaxLifetime,
		Revocation:         l.Revocation,
		RolesClaim:         rolesClaim,
	}
	if out.Issuer == "" {
		out.Issuer = "https://" + strings.TrimPrefix(strings.ToLower(spec.Hosts[0]), "*.")
	}
	compileLoginLifetimes(l, out, errs)
	if l.Cookie != nil {
		compileLoginCookie(l.Cookie, &out.Cookie, errs)
	}
	out.AllowedRedirectHosts = slices.Clone(p.Hosts)
	if len(l.AllowedRedirectHosts) > 0 {
		out.AllowedRedirectHosts = compileHostsField(l.AllowedRedirectHosts, "spec.login.allowedRedirectHosts", errs)
	}
	if l.UsersSecretRef == nil && l.OIDC == nil {
		errs.add("spec.login", v1alpha1.ReasonInvalidSpec, "set usersSecretRef, oidc, or both: people need a way to sign in")
	}
	if ref := l.UsersSecretRef; ref != nil {
		if data, ok := secrets.key("spec.login.usersSecretRef", *ref); ok {
			t, lineErrs := users.Parse(data)
			for _, le := range lineErrs {
				errs.add("spec.login.usersSecretRef", v1alpha1.ReasonUsersInvalid, "secret %s/%s key %q %s", p.Namespace, ref.Name, ref.Key, le.Error())
			}
			out.Users = t
			p.trusts = append(p.trusts, trust{field: "spec.login.usersSecretRef", secret: ref.Name, key: ref.Key, sum: secretKeySum(data), kind: trustUsers})
		}
	}
	if l.OIDC != nil {
		out.OIDC = compileOIDC(p, spec, out, secrets, errs)
		out.OIDC.users = func(name string) bool { _, ok := out.Users.Lookup(name); return ok }
	}
	compileSigningKey(p, l.SigningKeySecretRef.Name, out, secrets, errs)
	return out
}

// compileLoginLifetimes checks spec.login's revocation mode and the lifetimes of
// its tokens and sessions, and sets those given on out.
func compileLoginLifetimes(l *v1alpha1.LoginSpec, out *Login, errs *problems) {
	if out.Revocation == "" {
		out.Revocation = v1alpha1.RevocationRefresh
	}
	if out.Revocation != v1alpha1.RevocationRefresh && out.Revocation != v1alpha1.RevocationStrict {
		errs.add("spec.login.revocation", v1alpha1.ReasonInvalidSpec, "%q: use refresh or strict", l.Revocation)
	}
	if l.AccessTokenTTL != nil {
		if d := l.AccessTokenTTL.Duration; d < 10*time.Second || d > 24*time.Hour {
			errs.add("spec.login.accessTokenTTL", v1alpha1.ReasonInvalidSpec, "%s is out of range: use 10s to 24h (short is safer: a revoked session ends within it)", d)
		} else {
			out.AccessTTL = d
		}
	}
	if l.RefreshTokenTTL != nil {
		if d := l.RefreshTokenTTL.Duration; d < out.AccessTTL || d > 90*24*time.Hour {
			errs.add("spec.login.refreshTokenTTL", v1alpha1.ReasonInvalidSpec, "%s is out of range: use accessTokenTTL to 2160h", d)
		} else {
			out.RefreshTTL = d
		}
	}
	if l.SessionMaxLifetime != nil {
		if d := l.SessionMaxLifetime.Duration; d < out.AccessTTL || d > 366*24*time.Hour {
			errs.add("spec.login.sessionMaxLifetime", v1alpha1.ReasonInvalidSpec, "%s is out of range: use accessTokenTTL to 8784h", d)
		} else {
			out.SessionMaxLifetime = d
		}
	}
}

// compileLoginCookie applies spec.login.cookie to the secure defaults in out.
func compileLoginCookie(c *v1alpha1.CookieSpec, out *Cookie, errs *problems) {
	out.Domain = strings.TrimPrefix(strings.ToLower(c.Domain), ".")
	if out.Domain != "" && !validHost(out.Domain) {
		errs.add("spec.login.cookie.domain", v1alpha1.ReasonInvalidSpec, "%q is not a domain name", c.Domain)
	}
	if c.Secure != nil {
		out.Secure = *c.Secure
	}
	switch c.SameSite {
	case "", "Lax":
	case "Strict":
		out.SameSite = http.SameSiteStrictMode
	case "None":
		out.SameSite = http.SameSiteNoneMode
		if !out.Secure {
			errs.add("spec.login.cookie.sameSite", v1alpha1.ReasonInvalidSpec, "SameSite=None needs secure: true (browsers drop such cookies otherwise)")
		}
	default:
		errs.add("spec.login.cookie.sameSite", v1alpha1.ReasonInvalidSpec, "%q: use Lax, Strict or None", c.SameSite)
	}
}

// compileSigningKey reads the signing key Secret of a policy that signs people
// in: the signer and the keys that verify its tokens, and the keys derived from
// it (the sign-in form's CSRF key, the OIDC flow cookie's key). The policy
// trusts the Secret as it is now.
func compileSigningKey(p *Policy, name string, out *Login, secrets secretReader, errs *problems) {
	sec, ok := secrets.secrets[name]
	if !ok || sec == nil {
		errs.add("spec.login.signingKeySecretRef", v1alpha1.ReasonSigningKeyMissing,
			"secret %s/%s not found; create it with: jwtgate keygen --alg ES256 --namespace %s --name %s | kubectl apply -f -", p.Namespace, name, p.Namespace, name)
		return
	}
	signer, verify, err := keys.ParseSigning(secretData(sec))
	if err != nil {
		reason := v1alpha1.ReasonSigningKeyInvalid
		msg := fmt.Sprintf("secret %s/%s: %v", p.Namespace, name, err)
		if errors.Is(err, keys.ErrNoSigningKey) {
			reason = v1alpha1.ReasonSigningKeyMissing
			msg += fmt.Sprintf("; create it with: jwtgate keygen --alg ES256 --namespace %s --name %s | kubectl apply -f -", p.Namespace, name)
		}
		errs.add("spec.login.signingKeySecretRef", reason, "%s", msg)
		return
	}
	csrf, err := deriveKey(signer, "jwtgate sign-in form CSRF v1")
	if err != nil {
		errs.add("spec.login.signingKeySecretRef", v1alpha1.ReasonSigningKeyInvalid, "secret %s/%s: %v", p.Namespace, name, err)
		return
	}
	out.Signer, out.VerifyKeys, out.CSRFKey = signer, verify, csrf
	p.trusts = append(p.trusts, trust{field: "spec.login.signingKeySecretRef", secret: name, sum: secretSum(sec), kind: trustSigning})
	if out.OIDC != nil {
		// The flow cookie's key, derived apart from the CSRF key.
		if out.OIDC.FlowKey, err = deriveKey(signer, "jwtgate oidc flow cookie v1"); err != nil {
			errs.add("spec.login.signingKeySecretRef", v1alpha1.ReasonSigningKeyInvalid, "secret %s/%s: %v", p.Namespace, name, err)
		}
	}
}

func compileHostsField(hosts []string, field string, errs *problems) []string {
	var out []string
	for i, h := range hosts {
		n := strings.ToLower(h)
		if !validHost(n) {
			errs.add(fmt.Sprintf("%s[%d]", field, i), v1alpha1.ReasonInvalidSpec, "%q is not a host name: use e.g. shop.example.com or *.example.com", h)
			continue
		}
		out = append(out, n)
	}
	return out
}

// secretReader reads referenced Secret keys and records what is missing.
type secretReader struct {
	ns      string
	secrets map[string]*corev1.Secret
	errs    *problems
}

func (r secretReader) key(field string, ref v1alpha1.SecretKeyRef) ([]byte, bool) {
	s, ok := r.secrets[ref.Name]
	if !ok || s == nil {
		r.errs.add(field, v1alpha1.ReasonSecretNotFound, "secret %s/%s not found", r.ns, ref.Name)
		return nil, false
	}
	data := secretData(s)
	v, ok := data[ref.Key]
	if !ok {
		have := make([]string, 0, len(data))
		for k := range data {
			have = append(have, k)
		}
		slices.Sort(have)
		r.errs.add(field, v1alpha1.ReasonSecretKeyNotFound, "secret %s/%s has no key %q (it has: %s)", r.ns, ref.Name, ref.Key, strings.Join(have, ", "))
		return nil, false
	}
	return v, true
}

// secretData is a Secret's data with stringData merged over it, as the API server
// stores it.
func secretData(s *corev1.Secret) map[string][]byte {
	if len(s.StringData) == 0 {
		return s.Data
	}
	out := make(map[string][]byte, len(s.Data)+len(s.StringData))
	for k, v := range s.Data {
		out[k] = v
	}
	for k, v := range s.StringData {
		out[k] = []byte(v)
	}
	return out
}

// RemoteURLs are the jwksURLs whose key sets the policy uses.
func (p *Policy) RemoteURLs() []string {
	out := make([]string, len(p.remotes))
	for i, r := range p.remotes {
		out[i] = r.URL()
	}
	return out
}

func joinInts(xs []int) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprint(x)
	}
	return strings.Join(parts, ", ")
}
