// Package admin serves jwtgate's admin API (POST /admin/revoke, GET
// /admin/tokens) on its own listener, and is its client (jwtgate revoke). It
// is only the HTTP face: sessions and their token records live in
// authsvc/session, which knows nothing of this package.
package admin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jwtgate/jwtgate/authsvc/session"
)

// The paths of the admin API.
const (
	RevokePath = "/admin/revoke"
	TokensPath = "/admin/tokens"
)

// MinTokenLen is the shortest admin token accepted.
const MinTokenLen = 16

const (
	maxBody       = 64 << 10
	maxTokenFile  = 4 << 10
	maxPolicy     = 317 // namespace (63) / name (253)
	maxUser       = 256
	maxSessionID  = 128
	maxFreeText   = 200
	revokeTimeout = 10 * time.Second
)

// Handler serves the admin API. Mount it alone on the admin listener
// (--admin-bind-address); every request needs Authorization: Bearer Token.
type Handler struct {
	Store   session.Store
	Records session.Records // may be nil: events are then only logged
	Token   []byte          // the admin token (LoadToken); shorter than MinTokenLen refuses every request
	Logger  *slog.Logger
	Now     func() time.Time // nil: time.Now
}

// RevokeRequest is the body of POST /admin/revoke: Policy and one of User or
// Session. By and Reason are kept in the records.
type RevokeRequest struct {
	Policy  string `json:"policy"`
	User    string `json:"sub,omitempty"`
	Session string `json:"session,omitempty"`
	By      string `json:"by,omitempty"`     // who asks (recorded as "admin:BY")
	Reason  string `json:"reason,omitempty"` // why (recorded)
}

// RevokeResult is the answer of POST /admin/revoke.
type RevokeResult struct {
	Policy  string `json:"policy"`
	User    string `json:"sub,omitempty"`
	Session string `json:"session,omitempty"`
	Ended   int    `json:"ended"` // sessions ended
}

// ErrorBody is the answer of a refused request.
type ErrorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// LoadToken reads the admin token from a file (--admin-token-file). Leading and
// trailing white space (a final newline) is not part of it; a token shorter
// than MinTokenLen bytes is refused.
func LoadToken(path string) ([]byte, error) {
	f, err := os.Open(path) //nolint:gosec // G304: the file the operator named with --admin-token-file
	if err != nil {
		return nil, fmt.Errorf("admin token: %w", err)
	}
	defer func() { _ = f.Close() }()
	b, err := io.ReadAll(io.LimitReader(f, maxTokenFile+1))
	if err != nil {
		return nil, fmt.Errorf("admin token: %s: %w", path, err)
	}
	if len(b) > maxTokenFile {
		return nil, fmt.Errorf("admin token: %s is larger than %d bytes: it should hold only the token", path, maxTokenFile)
	}
	t := bytes.TrimSpace(b)
	switch {
	case len(t) == 0:
		return nil, fmt.Errorf("admin token: %s is empty; put a random token of at least %d characters in it (for example: head -c 32 /dev/urandom | base64 > %s)", path, MinTokenLen, path)
	case len(t) < MinTokenLen:
		return nil, fmt.Errorf("admin token: the token in %s has %d bytes; use at least %d (for example: head -c 32 /dev/urandom | base64 > %s)", path, len(t), MinTokenLen, path)
	case bytes.ContainsFunc(t, func(r rune) bool { return r < 0x21 || r == 0x7f }):
		return nil, fmt.Errorf("admin token: the token in %s holds spaces or control characters; an HTTP header cannot carry it", path)
	}
	return t, nil
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Handler) log() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if !h.authorized(w, r) {
		return
	}
	switch r.URL.Path {
	case RevokePath:
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", RevokePath+" takes POST")
			return
		}
		h.revoke(w, r)
	case TokensPath:
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", TokensPath+" takes GET")
			return
		}
		h.tokens(w, r)
	default:
		writeError(w, http.StatusNotFound, "not_found", "the admin API answers "+RevokePath+" and "+TokensPath)
	}
}

// authorized checks the bearer token in constant time (of the token's length
// too: both sides are hashed first).
func (h *Handler) authorized(w http.ResponseWriter, r *http.Request) bool {
	fail := func(desc string) bool {
		w.Header().Set("WWW-Authenticate", `Bearer realm="jwtgate-admin"`)
		writeError(w, http.StatusUnauthorized, "unauthorized", desc)
		return false
	}
	if len(h.Token) < MinTokenLen {
		h.log().Error("admin API refused a request: no admin token is configured")
		return fail("the admin API has no token configured")
	}
	auth := r.Header.Get("Authorization")
	scheme, given, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(given) == "" {
		h.log().Warn("admin API refused a request without a bearer token", "audit", "admin", "client", r.RemoteAddr, "path", r.URL.Path)
		return fail("the admin API needs Authorization: Bearer <admin token>")
	}
	a, b := sha256.Sum256([]byte(strings.TrimSpace(given))), sha256.Sum256(h.Token)
	if subtle.ConstantTimeCompare(a[:], b[:]) != 1 {
		h.log().Warn("admin API refused a wrong token", "audit", "admin", "client", r.RemoteAddr, "path", r.URL.Path)
		return fail("the admin token is wrong")
	}
	return true
}

func (h *Handler) revoke(w http.ResponseWriter, r *http.Request) {
	req, msg := readRevokeRequest(w, r)
	if msg != "" {
		writeError(w, http.StatusBadRequest, "invalid_request", msg)
		return
	}
	// The revocation completes even when the admin's client goes away.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), revokeTimeout)
	defer cancel()
	by := session.ByAdmin
	if req.By != "" {
		by += ":" + req.By
	}
	reason := req.Reason
	if reason == "" {
		reason = "revoked by an admin"
	}
	ev := session.Event{Time: h.now(), Kind: session.EventRevoked, Policy: req.Policy, User: req.User, Session: req.Session, By: by, Reason: reason, Client: r.RemoteAddr}
	res, err := h.endSessions(ctx, req, &ev)
	if err != nil {
		h.storeError(w, "revoke", req, err)
		return
	}
	h.log().Info("admin revoked sessions", "audit", "admin", "policy", req.Policy, "user", req.User, "session", req.Session,
		"ended", res.Ended, "by", by, "reason", reason, "client", r.RemoteAddr)
	if h.Records != nil {
		if err := h.Records.Record(ctx, ev); err != nil {
			h.log().Warn("admin revocation done but not kept in the token records", "policy", req.Policy, "error", err)
		}
	}
	writeJSON(w, http.StatusOK, res)
}

// readRevokeRequest reads and checks a revoke request's body: one JSON object
// naming a policy and either a user or a session. A non-empty message says
// what is wrong with it.
func readRevokeRequest(w http.ResponseWriter, r *http.Request) (RevokeRequest, string) {
	var req RevokeRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, "the body must be a JSON object " + `{"policy":"namespace/name","sub":"user"} or {"policy":"namespace/name","session":"ID"}: ` + err.Error()
	}
	if dec.More() {
		return req, "the body must hold one JSON object"
	}
	if msg := checkPolicy(req.Policy); msg != "" {
		return req, msg
	}
	switch {
	case req.User == "" && req.Session == "":
		return req, `name what to revoke: "sub" (every session of a user) or "session" (one session)`
	case req.User != "" && req.Session != "":
		return req, `give "sub" or "session", not both`
	}
	if req.User != "" {
		if msg := checkText("sub", req.User, maxUser); msg != "" {
			return req, msg
		}
	}
	if req.Session != "" {
		if msg := checkSessionID(req.Session); msg != "" {
			return req, msg
		}
	}
	for _, f := range []struct{ name, v string }{{"by", req.By}, {"reason", req.Reason}} {
		if f.v != "" {
			if msg := checkText(f.name, f.v, maxFreeText); msg != "" {
				return req, msg
			}
		}
	}
	return req, ""
}

// endSessions ends every session of req.User, or the session req.Session, and
// fills in the event: how many ended and, for one session, whose it was.
func (h *Handler) endSessions(ctx context.Context, req RevokeRequest, ev *session.Event) (RevokeResult, error) {
	res := RevokeResult{Policy: req.Policy, User: req.User, Session: req.Session}
	if req.User != "" {
		n, err := h.Store.EndUser(ctx, req.Policy, req.User)
		if err != nil {
			return res, err
		}
		res.Ended, ev.Count = n, n
		return res, nil
	}
	if h.Records != nil {
		if u, err := h.Records.SessionUser(ctx, req.Policy, req.Session); err == nil {
			ev.User = u
		}
	}
	alive := h.Store.SessionAlive(req.Policy, req.Session)
	if err := h.Store.End(ctx, req.Policy, req.Session); err != nil {
		return res, err
	}
	if alive {
		res.Ended = 1
	}
	ev.Count = res.Ended
	return res, nil
}

func (h *Handler) tokens(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	policy, user := q.Get("policy"), q.Get("sub")
	if msg := checkPolicy(policy); msg != "" {
		writeError(w, http.StatusBadRequest, "invalid_request", msg+" (query: ?policy=namespace/name&sub=user)")
		return
	}
	if user == "" {
		writeError(w, http.StatusBadRequest, "invalid_request", "sub is required (query: ?policy=namespace/name&sub=user)")
		return
	}
	if msg := checkText("sub", user, maxUser); msg != "" {
		writeError(w, http.StatusBadRequest, "invalid_request", msg)
		return
	}
	if h.Records == nil {
		writeError(w, http.StatusNotImplemented, "not_implemented", "this server keeps no token records")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), revokeTimeout)
	defer cancel()
	rec, err := h.Records.UserRecord(ctx, policy, user)
	if err != nil {
		h.storeError(w, "tokens", RevokeRequest{Policy: policy, User: user}, err)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

func (h *Handler) storeError(w http.ResponseWriter, op string, req RevokeRequest, err error) {
	h.log().Error("admin API: the session store failed", "op", op, "policy", req.Policy, "user", req.User, "session", req.Session, "error", err)
	writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the session store cannot be reached; see jwtgate's log")
}

func checkPolicy(p string) string {
	if p == "" {
		return `policy is required, as "namespace/name"`
	}
	ns, name, ok := strings.Cut(p, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") || len(p) > maxPolicy {
		return fmt.Sprintf(`policy %q: want "namespace/name"`, truncate(p))
	}
	for _, r := range p {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '/') {
			return fmt.Sprintf(`policy %q: namespace and name are lower-case Kubernetes names (a-z, 0-9, "-", ".")`, truncate(p))
		}
	}
	return ""
}

func checkText(field, v string, max int) string {
	switch {
	case len(v) > max:
		return fmt.Sprintf("%s is longer than %d bytes", field, max)
	case !utf8.ValidString(v):
		return field + " is not UTF-8"
	case strings.ContainsFunc(v, unicode.IsControl):
		return field + " holds control characters"
	}
	return ""
}

func checkSessionID(id string) string {
	if len(id) > maxSessionID {
		return fmt.Sprintf("session is longer than %d characters", maxSessionID)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Sprintf("session %q: a session id is base64url (A-Z, a-z, 0-9, -, _)", truncate(id))
		}
	}
	return ""
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, ErrorBody{Error: code, Description: desc})
}

// errorFromBody turns a refused answer into an error.
func errorFromBody(status int, body []byte) error {
	var e ErrorBody
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return fmt.Errorf("%d %s: %s", status, e.Error, e.Description)
	}
	return fmt.Errorf("%d %s: %s", status, http.StatusText(status), strings.TrimSpace(truncate(string(body))))
}

var errNoToken = errors.New("admin client: no token")
