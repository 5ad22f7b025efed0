package login

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"net/http"
	"strings"
)

// pageStyle is the only style of the pages; the Content-Security-Policy allows
// exactly it by hash, so the pages load nothing and run nothing.
const pageStyle = `
:root{color-scheme:light dark;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
body{margin:0;min-height:100vh;display:grid;place-items:center;background:Canvas;color:CanvasText}
main{width:min(22rem,92vw);padding:2rem;border:1px solid #8884;border-radius:.75rem}
h1{font-size:1.35rem;margin:0 0 .25rem}
p.host{margin:0 0 1.5rem;opacity:.75;font-size:.9rem;overflow-wrap:anywhere}
label{display:block;font-weight:600;margin:1rem 0 .35rem}
input{box-sizing:border-box;width:100%;padding:.6rem;font:inherit;border:1px solid #888;border-radius:.4rem;background:Field;color:FieldText}
input:focus,button:focus{outline:3px solid #2563eb;outline-offset:2px}
button{margin-top:1.5rem;width:100%;padding:.7rem;font:inherit;font-weight:600;border:0;border-radius:.4rem;background:#1d4ed8;color:#fff;cursor:pointer}
a.button{display:block;box-sizing:border-box;margin-top:1.5rem;width:100%;padding:.7rem;text-align:center;font-weight:600;border:1px solid #1d4ed8;border-radius:.4rem;color:inherit;text-decoration:none}
a.button:focus{outline:3px solid #2563eb;outline-offset:2px}
.error{margin:0 0 1rem;padding:.6rem .75rem;border-radius:.4rem;background:#b91c1c22;border:1px solid #b91c1c}
`

var styleHash = func() string {
	sum := sha256.Sum256([]byte(pageStyle))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}()

var pages = template.Must(template.New("").Parse(`
{{define "head"}}<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{{.Title}}</title>
<style>{{.Style}}</style>
</head>
<body>
<main>{{end}}

{{define "foot"}}</main>
</body>
</html>
{{end}}

{{define "login"}}{{template "head" .}}
<h1>Sign in</h1>
<p class="host">to {{.Host}}</p>
{{if .Error}}<p class="error" role="alert" id="form-error">{{.Error}}</p>{{end}}
{{if .Form}}<form method="post" action="/jwtgate/login"{{if .Error}} aria-describedby="form-error"{{end}}>
<input type="hidden" name="rd" value="{{.Redirect}}">
<input type="hidden" name="jwtgate_csrf" value="{{.CSRF}}">
<label for="username">User name</label>
<input id="username" name="username" type="text" autocomplete="username" autocapitalize="none" spellcheck="false" required maxlength="256" value="{{.Username}}"{{if not .Username}} autofocus{{end}}>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required maxlength="1024"{{if .Username}} autofocus{{end}}>
<button type="submit">Sign in</button>
</form>{{end}}
{{if .ProviderStart}}<a class="button" id="provider" href="{{.ProviderStart}}">{{.ProviderButton}}</a>{{end}}
{{template "foot" .}}{{end}}

{{define "message"}}{{template "head" .}}
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
{{if .SignOut}}<form method="post" action="/jwtgate/logout"><input type="hidden" name="rd" value="{{.Redirect}}"><button type="submit">Sign out</button></form>{{end}}
{{if .ProviderSignOut}}<a class="button" id="provider-signout" href="{{.ProviderSignOut}}">Also sign out of {{.ProviderButton}}</a>{{end}}
{{if .Link}}<p><a href="{{.Link}}">{{.LinkText}}</a></p>{{end}}
{{template "foot" .}}{{end}}
`))

type pageData struct {
	Title    string
	Style    template.CSS
	Host     string
	Error    string
	Redirect string
	CSRF     string
	Username string
	Message  string
	SignOut  bool
	Link     string
	LinkText string
	// Form shows the password form (the policy has a users Secret).
	Form bool
	// ProviderButton names the OpenID provider (displayName); ProviderStart
	// starts a sign-in there, ProviderSignOut signs out there.
	ProviderButton, ProviderStart, ProviderSignOut string
}

// writePage renders a page with the headers every page carries. formTargets are
// the hosts (from allowedRedirectHosts) a form on the page may end up at: CSP
// form-action also governs the redirect that follows a form's submission.
func writePage(w http.ResponseWriter, status int, name string, d pageData, formTargets []string) {
	d.Style = template.CSS(pageStyle) //nolint:gosec // G203: our own constant stylesheet (its hash is in the CSP)
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, d); err != nil {
		http.Error(w, "page error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src "+styleHash+"; form-action 'self'"+formAction(formTargets)+"; frame-ancestors 'none'; base-uri 'none'")
	setPageHeaders(h)
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func setPageHeaders(h http.Header) {
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	// same-origin, not no-referrer: under no-referrer browsers send "Origin:
	// null" with the pages' own form posts (Fetch, "append a request Origin
	// header"), which originAllowed must refuse; other sites still get no
	// Referer, so rd never leaks.
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}

// formAction lists hosts as CSP host sources. Hosts were validated when the
// policy compiled (letters, digits, '-', '.', a leading "*."), so none can end
// the directive.
func formAction(hosts []string) string {
	var b strings.Builder
	for _, h := range hosts {
		b.WriteByte(' ')
		b.WriteString(h)
	}
	return b.String()
}
