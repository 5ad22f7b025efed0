// Package e2e holds the end-to-end tests of jwtgate behind a real nginx (the
// Debian package, with TLS on a certificate the tests make) and a real browser
// (headless Chromium driven with chromedp).
//
// The tests carry the build tag e2e, so that `go test ./...` does not run them
// twice: `make e2e` (which `make test` calls) installs nginx, its set_misc
// module and Chromium when they are missing and the user is root, then runs
// `go test -tags e2e ./test/e2e/...`. When a program is missing the tests fail
// with the apt-get command that installs it; they never skip.
//
// What they start (jwtgate serve, nginx, Chromium, the echoing upstream) listens
// on 127.0.0.1 only, is bounded in time and is stopped when each test ends.
//
// # What they cover
//
// TestNginxFlow walks a client with a cookie jar through three nginx configs:
// the server ingress-nginx renders for auth-url + auth-signin +
// auth-response-headers (testdata/ingress-nginx.conf.tmpl: X-Original-URL,
// X-Original-Method, X-Auth-Request-Redirect, X-Sent-From, X-Real-IP,
// X-Forwarded-For, body dropped, error_page 401 to a sign-in location whose rd
// is escaped with set_escape_uri), the same with keepalive to the auth
// upstream, and README.md's "Plain nginx" block, read from the README itself
// (raw rd). Each walk: anonymous → 302 to the sign-in page with rd (the
// upstream never reached) → form with rd intact (a query with '&' and an
// escape) → wrong password (401) → sign-in with the CSRF field (303 back to the
// exact original URL, Secure HttpOnly SameSite=Lax cookies, refresh cookie on
// /jwtgate/) → the upstream sees X-Auth-User / X-Auth-Roles from the token, not
// the client's own → 403 on /admin/ without the role (upstream not reached) →
// 20 decisions, counting nginx's connections to jwtgate (one each without
// keepalive, at most 2 with it) → JSON sign-in of an admin and a Bearer token
// through nginx (200 on /admin/) → sign-out page and form post (cookies gone,
// 303 to rd) → anonymous again → the ended session's refresh token renews
// nothing.
//
// TestBrowser does the same sign-in in headless Chromium (app.test mapped to
// 127.0.0.1 with --host-resolver-rules, the test server's key trusted with
// --ignore-certificate-errors-spki-list): it types the password into the form
// served through nginx, submits, reads the upstream's answer on the original
// page, signs out with the sign-out page's button and lands on the sign-in
// form again. It pictures the sign-in form for README.md (docs/signin.png).
//
// # What they do not cover
//
// ingress-nginx itself (its Lua auth path with auth-keepalive, which accepts
// only 200; auth-cache-key; global auth), Traefik, jwtgate in a cluster
// (controller, chart: test/chart covers those), Redis sessions, access-token
// expiry and silent renewal through nginx (5-minute tokens; the login package
// tests renewal with a fake clock), sign-in throttling through nginx, HTTP/2,
// and what nginx sends to jwtgate beyond what the decisions prove
// (X-Original-URL and X-Original-Method arrive, or jwtgate would answer 403).
package e2e
