package policy

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jws/jwsbb"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
	"github.com/jwtgate/jwtgate/authsvc/keys"
)

// The compact JWS is split, base64-decoded and its header parsed once; these
// are the edge cases of that parsing, each with the answer jwtgate gave
// before it was (issue 17), when jws.VerifyCompactFast split and decoded the
// token again for every candidate key.

// enc is a base64 encoding of one segment.
type enc func([]byte) string

var (
	rawURL = base64.RawURLEncoding.EncodeToString
	padURL = base64.URLEncoding.EncodeToString
	stdB64 = base64.StdEncoding.EncodeToString
)

// rs256Segments signs the segments exactly as given (the signing input is
// what is sent, whatever its encoding) and returns the compact token with the
// signature in encoding sigEnc.
func rs256Segments(t testing.TB, key *rsa.PrivateKey, hdr, payload string, sigEnc enc) string {
	t.Helper()
	sum := sha256.Sum256([]byte(hdr + "." + payload))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return hdr + "." + payload + "." + sigEnc(sig)
}

// rs256JSON is rs256Segments over a header and payload given as JSON text.
func rs256JSON(t testing.TB, key *rsa.PrivateKey, hdr, payload string) string {
	return rs256Segments(t, key, rawURL([]byte(hdr)), rawURL([]byte(payload)), rawURL)
}

// claimsJSON is claimsValid as JSON text, with extra members appended raw
// (so that they may repeat a key or hold any JSON).
func claimsJSON(t testing.TB, drop []string, extra string) string {
	t.Helper()
	c := claimsValid(nil)
	for _, d := range drop {
		delete(c, d)
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if extra != "" {
		s = strings.TrimSuffix(s, "}") + "," + extra + "}"
	}
	return s
}

func TestVerifyParsing(t *testing.T) {
	k := newTestKeys(t)
	ap, secrets := shopPolicy(k)
	p := mustCompile(t, ap, secrets)
	hdr := `{"alg":"RS256","typ":"JWT"}`
	good := claimsJSON(t, nil, "")
	leeway := p.leeway.Seconds()
	now := float64(testNow.Unix())
	// A payload whose base64 holds '+' or '/' (std alphabet) and one that needs padding.
	stdPayload := claimsJSON(t, nil, `"x":"~~~???>>>"`)
	if !strings.ContainsAny(stdB64([]byte(stdPayload)), "+/") {
		t.Fatal("stdPayload does not exercise the standard alphabet")
	}
	padPayload := claimsJSON(t, nil, `"x":"a"`)
	for len(padPayload)%3 == 0 {
		padPayload = strings.TrimSuffix(padPayload, "}") + ` }`
	}
	tests := []struct {
		name   string
		token  string
		status int
		reason Reason
	}{
		{"valid", rs256JSON(t, k.rsa, hdr, good), 200, ReasonAllowed},
		{"no kid", rs256JSON(t, k.rsa, `{"alg":"RS256"}`, good), 200, ReasonAllowed},
		{"kid not a string", rs256JSON(t, k.rsa, `{"alg":"RS256","kid":7}`, good), 200, ReasonAllowed},
		{"alg none", rawURL([]byte(`{"alg":"none"}`)) + "." + rawURL([]byte(good)) + ".", 401, ReasonAlgorithm},
		{"alg none, signed", rs256JSON(t, k.rsa, `{"alg":"none"}`, good), 401, ReasonAlgorithm},
		{"alg in another case", rs256JSON(t, k.rsa, `{"alg":"rs256"}`, good), 401, ReasonAlgorithm},
		{"alg missing", rs256JSON(t, k.rsa, `{"typ":"JWT"}`, good), 401, ReasonMalformed},
		{"alg not a string", rs256JSON(t, k.rsa, `{"alg":["RS256"]}`, good), 401, ReasonMalformed},
		{"alg twice, none first", rs256JSON(t, k.rsa, `{"alg":"none","alg":"RS256"}`, good), 401, ReasonAlgorithm},
		{"header not JSON", rs256JSON(t, k.rsa, `alg=RS256`, good), 401, ReasonMalformed},
		{"header a JSON array", rs256JSON(t, k.rsa, `["RS256"]`, good), 401, ReasonMalformed},
		{"header with trailing data", rs256JSON(t, k.rsa, hdr+`x`, good), 401, ReasonMalformed},
		{"crit header", rs256JSON(t, k.rsa, `{"alg":"RS256","crit":["exp"],"exp":1}`, good), 401, ReasonBadSignature},
		{"b64 header", rs256JSON(t, k.rsa, `{"alg":"RS256","b64":true}`, good), 401, ReasonBadSignature},
		{"header not base64", rs256Segments(t, k.rsa, "*"+rawURL([]byte(hdr)), rawURL([]byte(good)), rawURL), 401, ReasonMalformed},
		{"payload not base64", rs256Segments(t, k.rsa, rawURL([]byte(hdr)), "*"+rawURL([]byte(good)), rawURL), 401, ReasonBadSignature},
		{"signature not base64", rs256Segments(t, k.rsa, rawURL([]byte(hdr)), rawURL([]byte(good)), func(b []byte) string { return "*" + rawURL(b) }), 401, ReasonBadSignature},
		{"signature empty", rawURL([]byte(hdr)) + "." + rawURL([]byte(good)) + ".", 401, ReasonBadSignature},
		{"header padded", rs256Segments(t, k.rsa, padURL([]byte(hdr+" ")), rawURL([]byte(good)), rawURL), 200, ReasonAllowed},
		{"payload padded", rs256Segments(t, k.rsa, rawURL([]byte(hdr)), padURL([]byte(padPayload)), rawURL), 200, ReasonAllowed},
		{"payload in the standard alphabet", rs256Segments(t, k.rsa, rawURL([]byte(hdr)), stdB64([]byte(stdPayload)), rawURL), 200, ReasonAllowed},
		{"signature padded", rs256Segments(t, k.rsa, rawURL([]byte(hdr)), rawURL([]byte(good)), padURL), 200, ReasonAllowed},
		{"signature in the standard alphabet", rs256Segments(t, k.rsa, rawURL([]byte(hdr)), rawURL([]byte(good)), stdB64), 200, ReasonAllowed},
		{"four segments", rs256JSON(t, k.rsa, hdr, good) + ".x", 401, ReasonMalformed},
		{"payload an array", rs256JSON(t, k.rsa, hdr, `[`+good+`]`), 401, ReasonMalformed},
		{"payload null", rs256JSON(t, k.rsa, hdr, `null`), 401, ReasonMalformed},
		{"payload a string", rs256JSON(t, k.rsa, hdr, `"`+strings.ReplaceAll(good, `"`, `\"`)+`"`), 401, ReasonMalformed},
		{"payload not JSON", rs256JSON(t, k.rsa, hdr, `exp=1`), 401, ReasonMalformed},
		{"payload with trailing garbage", rs256JSON(t, k.rsa, hdr, good+`x`), 401, ReasonMalformed},
		{"payload with a second object", rs256JSON(t, k.rsa, hdr, good+` {}`), 401, ReasonMalformed},
		{"payload with trailing space", rs256JSON(t, k.rsa, hdr, good+" \n"), 200, ReasonAllowed},
		{"payload cut short", rs256JSON(t, k.rsa, hdr, good[:len(good)-1]), 401, ReasonMalformed},
		{"exp as a string", rs256JSON(t, k.rsa, hdr, claimsJSON(t, []string{"exp"}, `"exp":"9999999999"`)), 401, ReasonNoExpiry},
		{"exp null", rs256JSON(t, k.rsa, hdr, claimsJSON(t, []string{"exp"}, `"exp":null`)), 401, ReasonNoExpiry},
		{"exp in upper case only", rs256JSON(t, k.rsa, hdr, claimsJSON(t, []string{"exp"}, `"EXP":9999999999`)), 401, ReasonNoExpiry},
		{"exp fractional, inside the leeway", rs256JSON(t, k.rsa, hdr, claimsJSON(t, []string{"exp"}, fmt.Sprintf(`"exp":%.1f`, now-leeway+0.5))), 200, ReasonAllowed},
		{"exp fractional, past the leeway", rs256JSON(t, k.rsa, hdr, claimsJSON(t, []string{"exp"}, fmt.Sprintf(`"exp":%.1f`, now-leeway-0.5))), 401, ReasonExpired},
		{"exp in exponent form", rs256JSON(t, k.rsa, hdr, claimsJSON(t, []string{"exp"}, `"exp":1.9e9`)), 200, ReasonAllowed},
		{"exp huge", rs256JSON(t, k.rsa, hdr, claimsJSON(t, []string{"exp"}, `"exp":1e300`)), 401, ReasonNoExpiry},
		{"exp beyond float64", rs256JSON(t, k.rsa, hdr, claimsJSON(t, []string{"exp"}, `"exp":1e400`)), 401, ReasonNoExpiry},
		{"exp a huge integer", rs256JSON(t, k.rsa, hdr, claimsJSON(t, []string{"exp"}, `"exp":123456789012345678901234567890`)), 401, ReasonNoExpiry},
		{"exp negative", rs256JSON(t, k.rsa, hdr, claimsJSON(t, []string{"exp"}, `"exp":-1`)), 401, ReasonNoExpiry},
		{"exp twice, expired last", rs256JSON(t, k.rsa, hdr, claimsJSON(t, nil, `"exp":1`)), 401, ReasonExpired},
		{"nbf huge", rs256JSON(t, k.rsa, hdr, claimsJSON(t, nil, `"nbf":1e300`)), 401, ReasonMalformed},
		{"nbf as a string", rs256JSON(t, k.rsa, hdr, claimsJSON(t, nil, `"nbf":"1"`)), 401, ReasonMalformed},
		{"iat fractional, past", rs256JSON(t, k.rsa, hdr, claimsJSON(t, []string{"iat"}, fmt.Sprintf(`"iat":%.3f`, now-0.25))), 200, ReasonAllowed},
		{"iat as a bool", rs256JSON(t, k.rsa, hdr, claimsJSON(t, []string{"iat"}, `"iat":true`)), 401, ReasonMalformed},
		{"aud twice, good last", rs256JSON(t, k.rsa, hdr, claimsJSON(t, []string{"aud"}, `"aud":"billing","aud":"shop"`)), 200, ReasonAllowed},
		{"aud twice, good first", rs256JSON(t, k.rsa, hdr, claimsJSON(t, []string{"aud"}, `"aud":"shop","aud":"billing"`)), 401, ReasonAudience},
		{"aud an array with a non-string", rs256JSON(t, k.rsa, hdr, claimsJSON(t, []string{"aud"}, `"aud":[1,{"a":"shop"},"shop-api"]`)), 200, ReasonAllowed},
		{"aud an object", rs256JSON(t, k.rsa, hdr, claimsJSON(t, []string{"aud"}, `"aud":{"shop":true}`)), 401, ReasonAudience},
		{"iss a number", rs256JSON(t, k.rsa, hdr, claimsJSON(t, []string{"iss"}, `"iss":1`)), 401, ReasonIssuer},
		{"escaped keys", rs256JSON(t, k.rsa, hdr, claimsJSON(t, []string{"aud"}, `"\u0061ud":"shop"`)), 200, ReasonAllowed},
		{"deeply nested claim", rs256JSON(t, k.rsa, hdr, claimsJSON(t, nil, `"deep":`+strings.Repeat(`[`, 5000)+strings.Repeat(`]`, 5000))), 200, ReasonAllowed},
		{"other key", rs256JSON(t, k.other, hdr, good), 401, ReasonBadSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := p.Decide(testNow, Request{Method: "GET", Path: "/", Header: bearer(tc.token)}, nil)
			if d.Status != tc.status || d.Reason != tc.reason {
				t.Fatalf("got %d %s (%s), want %d %s", d.Status, d.Reason, d.Description, tc.status, tc.reason)
			}
		})
	}
}

// The claims a policy reads come out of one decode of the payload: nested
// paths, roles arrays and spaced strings, numbers as written, booleans, and
// the forwarded headers.
func TestVerifyClaims(t *testing.T) {
	k := newTestKeys(t)
	ap, secrets := shopPolicy(k)
	p := mustCompile(t, ap, secrets)
	payload := claimsJSON(t, nil, `"realm_access":{"roles":["admin","user",7,true,null,{"x":1}]},`+
		`"scope":"orders:read  orders:write","tenant":1.50,"email_verified":true,"name":"Al\u0007ice","sid":"s1","jti":"j1"`)
	id, verr := p.verify(rs256JSON(t, k.rsa, `{"alg":"RS256"}`, payload), testNow)
	if verr != nil {
		t.Fatalf("refused: %s %s", verr.reason, verr.desc)
	}
	if id.Subject != "alice" || id.Session != "s1" || id.TokenID != "j1" || id.Own {
		t.Fatalf("identity %+v", id)
	}
	if want := testNow.Add(5*time.Minute + p.leeway); !id.Expires.Equal(want) {
		t.Fatalf("expires %v, want %v", id.Expires, want)
	}
	if got := strings.Join(id.Roles(), "|"); got != "admin|user|7|true" {
		t.Fatalf("roles %q", got)
	}
	headers := map[string]string{}
	for _, h := range id.Headers {
		headers[h.Name] = strings.Join(h.Values, "|")
	}
	want := map[string]string{"X-Auth-User": "alice", "X-Auth-Roles": `admin,user,7,true,null,{"x":1}`, "X-Auth-Name": "Alice"}
	if fmt.Sprint(headers) != fmt.Sprint(want) {
		t.Fatalf("headers %v, want %v", headers, want)
	}
	d := p.Decide(testNow, Request{Method: "GET", Path: "/api/orders", Header: bearer(rs256JSON(t, k.rsa, `{"alg":"RS256"}`, payload))}, nil)
	if d.Status != 200 {
		t.Fatalf("scope contains orders:read: %d %s", d.Status, d.Reason)
	}
	d = p.Decide(testNow, Request{Method: "GET", Path: "/tenant", Header: bearer(rs256JSON(t, k.rsa, `{"alg":"RS256"}`, payload))}, nil)
	if d.Status != 403 || d.Reason != ReasonClaim {
		t.Fatalf("tenant 1.50 is not in [a b]: %d %s", d.Status, d.Reason)
	}
}

// FuzzVerifySignature holds verifySignature to what jwtgate did before issue
// 17: the same answer (reason, payload, which key) as referenceVerify, which
// splits, decodes and parses the token again for every key with
// jws.VerifyCompactFast, for any token.
func FuzzVerifySignature(f *testing.F) {
	k := newTestKeys(f)
	ap, secrets := shopPolicy(k)
	shop := mustCompile(f, ap, secrets)
	// A second policy: keys by kid (a JWKS) and its own sign-in's signing key.
	jwks := fmt.Sprintf(`{"keys":[{"kty":"RSA","kid":"k1","use":"sig","alg":"RS256","n":%q,"e":"AQAB"},{"kty":"oct","kid":"h1","k":%q}]}`,
		rawURL(k.rsa.N.Bytes()), rawURL(k.hmac))
	secrets["shop-keys"] = secret("shop", "shop-keys", map[string][]byte{"rsa.pem": []byte(jwks), "ec.pem": k.ecPEM, "ed.pem": k.edPEM})
	signing, err := keys.Generate("ES256")
	if err != nil {
		f.Fatal(err)
	}
	block, _ := pem.Decode(signing)
	ownKey, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		f.Fatal(err)
	}
	secrets["sign"] = secret("shop", "sign", map[string][]byte{"private.pem": signing})
	secrets["users"] = secret("shop", "users", map[string][]byte{"users": nil})
	ap.Spec.Login = &v1alpha1.LoginSpec{
		UsersSecretRef:      &v1alpha1.SecretKeyRef{Name: "users", Key: "users"},
		SigningKeySecretRef: v1alpha1.SecretRef{Name: "sign"},
	}
	withLogin := mustCompile(f, ap, secrets)
	// The seeds reach every way to verify: the own key, a key by kid, a PEM key.
	ownToken := mint(f, gojwt.SigningMethodES256, ownKey, claimsValid(nil), map[string]any{"kid": withLogin.Login.Signer.ID})
	kidToken := mint(f, gojwt.SigningMethodRS256, k.rsa, claimsValid(nil), map[string]any{"kid": "k1"})
	if s, err := withLogin.verifySignature(ownToken); err != nil || !s.own {
		f.Fatalf("own token: %+v %+v", s, err)
	}
	if s, err := withLogin.verifySignature(kidToken); err != nil || s.own {
		f.Fatalf("token by kid: %+v %+v", s, err)
	}
	hdr := rawURL([]byte(`{"alg":"RS256"}`))
	good := claimsJSON(f, nil, "")
	for _, s := range []string{
		ownToken, kidToken,
		mint(f, gojwt.SigningMethodES256, ownKey, claimsValid(nil), nil),
		mint(f, gojwt.SigningMethodHS256, k.hmac, claimsValid(nil), map[string]any{"kid": "h1"}),
		mint(f, gojwt.SigningMethodHS256, k.hmac, claimsValid(nil), map[string]any{"kid": "k1"}),
		mint(f, gojwt.SigningMethodRS256, k.rsa, claimsValid(nil), nil),
		mint(f, gojwt.SigningMethodES256, k.ec, claimsValid(nil), map[string]any{"kid": "x"}),
		mint(f, gojwt.SigningMethodEdDSA, k.ed, claimsValid(nil), nil),
		mint(f, gojwt.SigningMethodHS256, k.hmac, claimsValid(nil), nil),
		mint(f, gojwt.SigningMethodHS256, k.rsaPEM, claimsValid(nil), nil),
		rs256Segments(f, k.rsa, hdr, padURL([]byte(good)), rawURL),
		rs256Segments(f, k.rsa, hdr, stdB64([]byte(good)), stdB64),
		rs256Segments(f, k.rsa, hdr, "*"+rawURL([]byte(good)), rawURL),
		rs256JSON(f, k.rsa, `{"alg":"RS256","crit":["x"]}`, good),
		rs256JSON(f, k.rsa, `{"alg":"RS256","b64":false}`, good),
		rs256JSON(f, k.rsa, `{"alg":"none","alg":"RS256"}`, good),
		"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "..", "a.b.c", "", "e30.e30.e30", "e30=.e30.e30",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		for _, p := range []*Policy{shop, withLogin} {
			got, gotErr := p.verifySignature(token)
			want, wantErr := referenceVerify(p, token)
			if (gotErr == nil) != (wantErr == nil) || (gotErr != nil && *gotErr != *wantErr) {
				t.Fatalf("%q: got %+v, want %+v", token, gotErr, wantErr)
			}
			if string(got.payload) != string(want.payload) || got.own != want.own || got.remote != want.remote {
				t.Fatalf("%q: got %+v, want %+v", token, got, want)
			}
		}
	})
}

// referenceVerify is verifySignature as it was before issue 17.
func referenceVerify(p *Policy, token string) (signedPayload, *verifyError) {
	if len(token) > MaxTokenSize {
		return signedPayload{}, refuse(ReasonTooLarge, "token is larger than 16 KiB")
	}
	buf := []byte(token)
	hdr, _, _, err := jwsbb.SplitCompact(buf)
	if err != nil {
		return signedPayload{}, refuse(ReasonMalformed, "token is not a compact JWS")
	}
	h := jwsbb.HeaderParseCompact(hdr)
	algName, err := jwsbb.HeaderGetString(h, "alg")
	if err != nil {
		return signedPayload{}, refuse(ReasonMalformed, "token header has no alg")
	}
	kid, _ := jwsbb.HeaderGetString(h, "kid")
	alg, ok := jwa.LookupSignatureAlgorithm(algName)
	ownAlg := p.Login != nil && p.Login.Signer.Alg == alg
	if !ok || algName == "none" || !(ownAlg || slices.Contains(p.algs, algName)) {
		return signedPayload{}, refuse(ReasonAlgorithm, "algorithm is not accepted")
	}
	tried := 0
	var payload []byte
	try := func(cands []keys.Key) bool {
		for _, k := range cands {
			if tried >= maxCandidateKeys {
				return false
			}
			tried++
			if pl, err := jws.VerifyCompactFast(k.Key, buf, alg); err == nil {
				payload = pl
				return true
			}
		}
		return false
	}
	var signed signedPayload
	switch {
	case try(p.own.Find(kid, alg)):
		signed.own = true
	case try(p.listed.Find(kid, alg)):
	case slices.Contains(p.algs, algName):
		for _, r := range p.remotes {
			if set := r.Current(); set != nil && try(set.Find(kid, alg)) {
				signed.remote = r
				break
			}
		}
	}
	if payload == nil {
		if tried == 0 {
			return signedPayload{}, refuse(ReasonUnknownKey, "no key of this policy matches the token's kid and alg")
		}
		return signedPayload{}, refuse(ReasonBadSignature, "signature does not verify")
	}
	signed.payload = payload
	return signed, nil
}

// FuzzDecodeClaims holds decodeClaims to the decode jwtgate made before issue
// 17, into a map[string]any: the same claims, or an error for the same inputs.
func FuzzDecodeClaims(f *testing.F) {
	for _, s := range []string{
		`{"sub":"alice","exp":1.5e9,"aud":["a","b"],"realm_access":{"roles":["admin",7,true,null]}}`,
		`{}`, `null`, `[]`, `"x"`, `1`, `{"a":1}x`, `{"a":1} {}`, `{"a":1}}`, `{"a":1}]`, `{"a":1} `,
		`{"a":1,"a":"2"}`, `{"\u0061":"\ud800"}`, `{"a":-0.0e-7}`, `{"a":1e400}`, `{"a":[[[{}]]]}`, "{\"a\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		got, gotErr := decodeClaims(payload)
		want, wantErr := referenceDecodeClaims(payload)
		if (gotErr == nil) != (wantErr == nil) || !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: got %#v (%v), want %#v (%v)", payload, got, gotErr, want, wantErr)
		}
	})
}

// referenceDecodeClaims is decodeClaims as it was before issue 17.
func referenceDecodeClaims(payload []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil || dec.More() {
		return nil, errors.New("not a JSON object")
	}
	return m, nil
}
