package policy

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
)

// policyShape is what a policy compiles from its roles claim, rules,
// forwardClaims and token sources alone: nothing of its name, namespace,
// hosts or Secrets. Policies whose specs say the same there (one template
// for many sites) share one shape, as they share parsed keys: with 10,000
// policies of one shape that is most of their memory, and a decision reads
// one rule table that stays in the CPU's caches instead of 10,000 cold
// ones. A shape is immutable; nothing appends to its slices (they are
// clipped, so an append copies).
type policyShape struct {
	rules    ruleTable
	sources  []tokenSource
	slots    claimSlots // the roles claim, then the claims of rules and forwardClaims
	forward  []forwardClaim
	blank    []Header  // every forwardClaims header, empty: the allow of a public rule
	warnings []Problem // the rules' fall-through warnings
}

var shapeTable weakTable[policyShape]

// shapeSpec is what a shape compiles from, as its key.
type shapeSpec struct {
	RolesClaim    string                  `json:"r"`
	Rules         []v1alpha1.Rule         `json:"u,omitempty"`
	ForwardClaims []v1alpha1.ForwardClaim `json:"f,omitempty"`
	TokenSources  []v1alpha1.TokenSource  `json:"t,omitempty"`
}

// compileShape returns the shape of a spec, shared with every policy compiled
// from the same roles claim, rules, forwardClaims and token sources. A spec
// with problems there gets a shape of its own and the problems, each naming
// its field, as compiling each part alone would.
func compileShape(spec *v1alpha1.AuthPolicySpec, rolesClaim string, errs *problems) *policyShape {
	key := shapeSpec{RolesClaim: rolesClaim, Rules: spec.Rules, ForwardClaims: spec.ForwardClaims}
	if spec.JWT != nil {
		key.TokenSources = spec.JWT.TokenSources
	}
	// Marshal cannot fail on these types; if it ever did, the shape is
	// simply not shared. The key is lossy (omitempty folds "in: []" into no
	// "in"), so a spec is compiled, and its problems found, before a shape of
	// the same key is shared with it: only specs without problems share.
	enc, err := json.Marshal(key)
	id := sha256.Sum256(enc)
	var own problems
	sh := &policyShape{}
	sh.slots.of(rolesClaim) // slot 0: rolesSlot
	sh.sources = compileTokenSources(spec.JWT, &own)
	sh.rules = compileRules(spec.Rules, sh.slots.of, &own)
	sh.warnings = slices.Clip(sh.rules.fallThrough(spec.Rules))
	compileForwardClaims(sh, spec.ForwardClaims, &own)
	sh.slots = slices.Clip(sh.slots)
	if len(own) > 0 || err != nil {
		*errs = append(*errs, own...)
		return sh
	}
	if shared := shapeTable.get(id); shared != nil {
		return shared
	}
	return shapeTable.put(id, sh)
}

// defaultTokenSources: a bearer token, then the access cookie of jwtgate's
// own sign-in. Shared; never modified.
var defaultTokenSources = []tokenSource{{header: "Authorization", prefix: "Bearer "}, {cookie: AccessCookie}}

func compileTokenSources(j *v1alpha1.JWTSpec, errs *problems) []tokenSource {
	if j == nil || len(j.TokenSources) == 0 {
		return defaultTokenSources
	}
	out := make([]tokenSource, 0, len(j.TokenSources))
	for i, s := range j.TokenSources {
		field := fmt.Sprintf("spec.jwt.tokenSources[%d]", i)
		switch {
		case (s.Header == "") == (s.Cookie == ""):
			errs.add(field, v1alpha1.ReasonInvalidSpec, "set exactly one of header or cookie")
		case s.Header != "":
			if !validHeaderName(s.Header) {
				errs.add(field+".header", v1alpha1.ReasonInvalidSpec, "%q is not a valid header name", s.Header)
				continue
			}
			out = append(out, tokenSource{header: http.CanonicalHeaderKey(s.Header), prefix: s.Prefix})
		default:
			if s.Prefix != "" {
				errs.add(field+".prefix", v1alpha1.ReasonInvalidSpec, "prefix applies to header sources only")
			}
			if !validHeaderName(s.Cookie) {
				errs.add(field+".cookie", v1alpha1.ReasonInvalidSpec, "%q is not a valid cookie name", s.Cookie)
				continue
			}
			out = append(out, tokenSource{cookie: s.Cookie})
		}
	}
	return slices.Clip(out)
}

// compileForwardClaims compiles spec.forwardClaims into the headers an allow
// sets, and their blank form for public rules.
func compileForwardClaims(sh *policyShape, fcs []v1alpha1.ForwardClaim, errs *problems) {
	for i, fc := range fcs {
		field := fmt.Sprintf("spec.forwardClaims[%d]", i)
		if !validHeaderName(fc.Header) {
			errs.add(field+".header", v1alpha1.ReasonInvalidSpec, "%q is not a valid header name", fc.Header)
			continue
		}
		if fc.Claim == "" {
			errs.add(field+".claim", v1alpha1.ReasonInvalidSpec, "a claim name is required")
			continue
		}
		switch fc.Format {
		case "", v1alpha1.ForwardFormatText, v1alpha1.ForwardFormatJSON:
		default:
			errs.add(field+".format", v1alpha1.ReasonInvalidSpec, "%q is not a format: use text or json", fc.Format)
			continue
		}
		name := http.CanonicalHeaderKey(fc.Header)
		sh.forward = append(sh.forward, forwardClaim{header: name, lower: strings.ToLower(name), slot: sh.slots.of(fc.Claim), json: fc.Format == v1alpha1.ForwardFormatJSON})
	}
	sh.forward = slices.Clip(sh.forward)
	if len(sh.forward) == 0 {
		return
	}
	sh.blank = make([]Header, len(sh.forward))
	empty := []string{""}
	for i, f := range sh.forward {
		sh.blank[i] = Header{Name: f.header, Lower: f.lower, Values: empty}
	}
}
