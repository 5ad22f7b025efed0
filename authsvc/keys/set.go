package keys

import (
	"slices"

	"github.com/lestrrat-go/jwx/v3/jwa"
)

// Set indexes keys for the hot path. Every answer is precomputed when the
// set is built, so lookups do not allocate. A Set is immutable and safe for
// concurrent use; a nil *Set is an empty set.
type Set struct {
	keys []Key
	// byAlg: alg -> every key allowing it (the answer for tokens without kid).
	byAlg map[string][]Key
	// byKIDAlg: (kid, alg) -> the keys with that ID allowing alg, followed
	// by the AnyKID keys allowing alg.
	byKIDAlg map[kidAlg][]Key
	// anyKID: alg -> the AnyKID keys allowing it (the answer for a kid that
	// no key names).
	anyKID map[string][]Key
}

type kidAlg struct{ kid, alg string }

// NewSet indexes keys. The slice is copied; the keys are not.
func NewSet(keys []Key) *Set {
	s := &Set{
		keys:     slices.Clip(slices.Clone(keys)),
		byAlg:    make(map[string][]Key),
		byKIDAlg: make(map[kidAlg][]Key),
		anyKID:   make(map[string][]Key),
	}
	for _, k := range s.keys {
		for _, a := range k.Algs {
			name := a.String()
			s.byAlg[name] = append(s.byAlg[name], k)
			if k.AnyKID {
				s.anyKID[name] = append(s.anyKID[name], k)
			}
		}
	}
	for _, k := range s.keys {
		if k.ID == "" {
			continue
		}
		for _, a := range k.Algs {
			ka := kidAlg{k.ID, a.String()}
			if _, done := s.byKIDAlg[ka]; done {
				continue
			}
			// Keys named by this kid first (in input order), then the
			// keys that name no kid and so may be meant as well.
			var list []Key
			var named []int
			for j, o := range s.keys {
				if o.ID == k.ID && o.Allows(a) {
					list = append(list, o)
					named = append(named, j)
				}
			}
			for j, o := range s.keys {
				if o.AnyKID && o.Allows(a) && !slices.Contains(named, j) {
					list = append(list, o)
				}
			}
			s.byKIDAlg[ka] = list
		}
	}
	// Answers are shared between callers: clip them so that a careless
	// append by one caller cannot write into another's view.
	for k, v := range s.byAlg {
		s.byAlg[k] = slices.Clip(v)
	}
	for k, v := range s.anyKID {
		s.anyKID[k] = slices.Clip(v)
	}
	for k, v := range s.byKIDAlg {
		s.byKIDAlg[k] = slices.Clip(v)
	}
	return s
}

// Find returns the keys that may verify a token signed with alg and
// carrying kid, most specific first:
//
//   - kid == "": every key allowing alg;
//   - kid != "": the keys whose ID is kid and that allow alg, then the keys
//     that named no kid (AnyKID: PEM keys, HMAC secrets, JWKs without kid)
//     and allow alg. A kid no key names thus finds only AnyKID keys.
//
// A key is never returned for an algorithm its type does not allow: an RSA
// key is never a candidate for HS256. The result is shared: callers must not
// modify it. Find does not allocate.
func (s *Set) Find(kid string, alg jwa.SignatureAlgorithm) []Key {
	if s == nil {
		return nil
	}
	name := alg.String()
	if kid == "" {
		return s.byAlg[name]
	}
	if ks, ok := s.byKIDAlg[kidAlg{kid, name}]; ok {
		return ks
	}
	return s.anyKID[name]
}

// HasKID reports whether some key of the set has ID kid (for any
// algorithm). A remote JWKS uses it to decide whether an unknown kid is
// worth a refresh.
func (s *Set) HasKID(kid string) bool {
	if s == nil || kid == "" {
		return false
	}
	for _, k := range s.keys {
		if k.ID == kid {
			return true
		}
	}
	return false
}

// Keys returns every key in input order. The slice is shared: callers must
// not modify it.
func (s *Set) Keys() []Key {
	if s == nil {
		return nil
	}
	return s.keys
}

// Len returns the number of keys.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.keys)
}
