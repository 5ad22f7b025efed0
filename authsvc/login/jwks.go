package login

import (
	"encoding/json"
	"net/http"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// /jwtgate/jwks.json: the public keys of the policy's signing keys, for
// upstreams that verify the tokens themselves.

func (h *Handler) jwks(x *exchange) {
	set := jwk.NewSet()
	for _, k := range x.p.Login.VerifyKeys {
		if k.Public != nil {
			// AddKey refuses only a key already in the set: served once.
			_ = set.AddKey(k.Public)
		}
	}
	body, err := json.Marshal(set)
	if err != nil {
		http.Error(x.w, "cannot encode the key set", http.StatusInternalServerError)
		return
	}
	hd := x.w.Header()
	hd.Set("Content-Type", "application/jwk-set+json")
	hd.Set("Cache-Control", "public, max-age=300")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Access-Control-Allow-Origin", "*")
	_, _ = x.w.Write(body)
}
