package proxycheck

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Severity says how bad a finding is.
type Severity string

// Severities, worst first.
const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
	SeverityInfo    Severity = "info"
)

func (s Severity) rank() int {
	switch s {
	case SeverityError:
		return 0
	case SeverityWarning:
		return 1
	}
	return 2
}

// Finding is one thing wrong with how a proxy is configured around jwtgate.
type Finding struct {
	Severity Severity
	// Object names the proxy object: "Ingress shop/web".
	Object string
	// Source is where the object was read from, when it came from a file.
	Source string
	// Field is the path of the field at fault, e.g.
	// "metadata.annotations[nginx.ingress.kubernetes.io/auth-response-headers]".
	Field string
	// Policy is the AuthPolicy ("namespace/name") the finding concerns, if any.
	Policy string
	// Message says what is wrong, what follows from it and how to fix it.
	Message string
}

// String formats the finding as "warning: ingress.yaml:3: Ingress shop/web: field: message".
func (f Finding) String() string {
	parts := []string{string(f.Severity)}
	for _, s := range []string{f.Source, f.Object, f.Field, f.Message} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, ": ")
}

// Config says how to tell what points at jwtgate.
type Config struct {
	// Service is jwtgate's Service; Name defaults to "jwtgate".
	Service Service
}

// checker holds one run's inputs and findings.
type checker struct {
	svc      Service
	policies map[string]Policy
	list     []Policy
	objects  []Object
	mesh     []meshProvider
	findings []Finding
	// resolved are the policies the object being checked answers with.
	resolved []string
	// pointing collects resolved, by policy.
	pointing map[string][]string
}

// attach gives the findings of one object that concern no policy in
// particular (failOpen, trustForwardHeader) to each policy the object answers
// with, so that the controller can show them on those policies.
func (c *checker) attach(first int) {
	if len(c.resolved) == 0 {
		return
	}
	var extra []Finding
	for i := first; i < len(c.findings); i++ {
		if c.findings[i].Policy != "" {
			continue
		}
		c.findings[i].Policy = c.resolved[0]
		for _, p := range c.resolved[1:] {
			f := c.findings[i]
			f.Policy = p
			extra = append(extra, f)
		}
	}
	c.findings = append(c.findings, extra...)
}

// Check reads the proxy objects and reports each finding about those that
// point at jwtgate, sorted by severity, then object. Objects that do not
// point at jwtgate give no findings.
func Check(cfg Config, objects []Object, policies []Policy) []Finding {
	return CheckAll(cfg, objects, policies).Findings
}

// Result is what CheckAll finds.
type Result struct {
	// Findings as Check returns them.
	Findings []Finding
	// Pointing lists, by policy ("namespace/name"), the objects that answer
	// with it ("Ingress shop/web"), each once, in the order read.
	Pointing map[string][]string
}

// CheckAll is Check that also says which objects point at which policy.
func CheckAll(cfg Config, objects []Object, policies []Policy) Result {
	c := &checker{svc: cfg.Service, policies: map[string]Policy{}, list: policies, objects: objects, pointing: map[string][]string{}}
	if c.svc.Name == "" {
		c.svc.Name = "jwtgate"
	}
	for _, p := range policies {
		c.policies[p.Key()] = p
	}
	c.mesh = c.meshProviders()
	for _, o := range objects {
		first := len(c.findings)
		c.resolved = nil
		switch o.Kind {
		case "Ingress":
			c.ingress(o)
		case "HTTPRoute":
			c.httpRoute(o)
		case "SecurityPolicy":
			c.securityPolicy(o)
		case "Middleware":
			c.middleware(o)
		case "AuthorizationPolicy":
			c.authorizationPolicy(o)
		}
		c.attach(first)
		for _, p := range c.resolved {
			if !slices.Contains(c.pointing[p], o.String()) {
				c.pointing[p] = append(c.pointing[p], o.String())
			}
		}
	}
	slices.SortStableFunc(c.findings, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(a.Severity.rank(), b.Severity.rank()), cmp.Compare(a.Object, b.Object))
	})
	return Result{Findings: c.findings, Pointing: c.pointing}
}

func (c *checker) add(sev Severity, o Object, field, policy, format string, args ...any) {
	c.findings = append(c.findings, Finding{
		Severity: sev, Object: o.String(), Source: o.Source, Field: field, Policy: policy,
		Message: fmt.Sprintf(format, args...),
	})
}

// resolve finds the policies a target answers with: the named one, or those
// whose hosts cover the given hosts (host routing). It reports a missing
// named policy.
func (c *checker) resolve(o Object, field string, t target, hosts []string) []Policy {
	if t.policy != "" {
		p, ok := c.policies[t.policy]
		if !ok {
			c.add(SeverityError, o, field, t.policy,
				"names AuthPolicy %s, which does not exist: every request through it is answered 403; create the policy or fix the path (%s)",
				t.policy, t.path)
			return nil
		}
		c.resolved = append(c.resolved, p.Key())
		return []Policy{p}
	}
	var out []Policy
	for _, p := range c.list {
		if slices.ContainsFunc(hosts, p.coversHost) {
			out = append(out, p)
			c.resolved = append(c.resolved, p.Key())
		}
	}
	return out
}

// checkHosts warns about hosts the chosen policies do not cover: with host
// routing, a host without a policy is answered 403; with a named policy, a
// host outside its hosts gets no sign-in redirect and no host-routed pages.
func (c *checker) checkHosts(o Object, field string, t target, hosts []string, ps []Policy) {
	for _, h := range hosts {
		if h == "" {
			continue
		}
		if t.policy == "" {
			if !slices.ContainsFunc(ps, func(p Policy) bool { return p.coversHost(h) }) {
				c.add(SeverityWarning, o, field, "",
					"routes by host (%s) but no AuthPolicy lists host %q in spec.hosts: every request to it is answered 403; add the host to a policy, or name the policy in the path (%s/NAMESPACE/NAME)",
					t.path, h, t.path)
			}
			continue
		}
		for _, p := range ps {
			if len(p.Hosts) > 0 && !p.coversHost(h) {
				c.add(SeverityWarning, o, field, p.Key(),
					"host %q is not in spec.hosts of AuthPolicy %s: its sign-in pages and redirects are not served there; add the host to the policy",
					h, p.Key())
			}
		}
	}
}

// checkCopied reports each forwardClaims header that the proxy does not copy
// from the auth answer onto the upstream request: the upstream would see
// whatever the client sent.
func (c *checker) checkCopied(o Object, field string, copied []string, ps []Policy, fix string) {
	for _, p := range ps {
		for _, h := range p.ForwardHeaders {
			if !hasHeader(copied, h) {
				c.add(SeverityError, o, field, p.Key(),
					"does not copy %s from jwtgate's answer, so the upstream sees whatever the client sends as %s (AuthPolicy %s forwards it); %s",
					h, h, p.Key(), fix)
			}
		}
	}
}

// checkSent warns when a proxy that sends only listed headers to jwtgate
// leaves out the cookie (cookie sign-in can never work) or the
// method-override headers (the override check never sees them).
func (c *checker) checkSent(o Object, field string, sent []string, ps []Policy, fix string) {
	cookies, methods := false, false
	var cp, mp string
	for _, p := range ps {
		if p.Cookies && !cookies {
			cookies, cp = true, p.Key()
		}
		if p.MethodRules && !methods {
			methods, mp = true, p.Key()
		}
	}
	if cookies && !hasHeader(sent, "cookie") {
		c.add(SeverityWarning, o, field, cp,
			"does not send the cookie header to jwtgate while AuthPolicy %s reads tokens from a cookie: cookie sign-in can never work; %s",
			cp, fmt.Sprintf(fix, "cookie"))
	}
	if methods {
		var missing []string
		for _, h := range methodOverrideHeaders {
			if !hasHeader(sent, h) {
				missing = append(missing, strings.ToLower(h))
			}
		}
		if len(missing) > 0 {
			c.add(SeverityWarning, o, field, mp,
				"does not send %s to jwtgate while AuthPolicy %s limits rules by method: an upstream that honors a method override gets a method jwtgate never checked; %s",
				strings.Join(missing, ", "), mp, fmt.Sprintf(fix, strings.Join(missing, ", ")))
		}
	}
}

// checkDoorRoute reports a route that sends a door's path from the internet
// to jwtgate: anyone could ask it "is this token valid?".
func (c *checker) checkDoorRoute(o Object, field, path string) {
	p := strings.TrimRight(path, "/")
	for _, door := range doorPaths {
		if p == "" || hasPathPrefix(door, p) || hasPathPrefix(p, door) {
			c.add(SeverityError, o, field, "",
				"routes %q from the internet to jwtgate, which exposes %s (proxy-only: it answers \"is this token valid?\" to anyone); route only %s",
				path, door, strings.Join(publicPaths, ", "))
			return
		}
	}
}

// routesSignIn reports whether an Ingress or HTTPRoute routes jwtgate's
// sign-in pages to jwtgate on host.
func (c *checker) routesSignIn(host string) bool {
	for _, o := range c.objects {
		for _, r := range c.jwtgateRoutes(o) {
			if (r.host == "" || hostMatches(r.host, host)) && (hasPathPrefix("/jwtgate/login", strings.TrimRight(r.path, "/")) || r.path == "/") {
				return true
			}
		}
	}
	return false
}

// checkSignInRoute warns about login policies behind doors that cannot do
// nginx's auth-signin: the 302 jwtgate answers leads to /jwtgate/login on the
// app's host, which needs a route to jwtgate.
func (c *checker) checkSignInRoute(o Object, field string, hosts []string, ps []Policy) {
	for _, p := range ps {
		if !p.SignsIn {
			continue
		}
		for _, h := range hosts {
			if h != "" && !c.routesSignIn(h) {
				c.add(SeverityWarning, o, field, p.Key(),
					"AuthPolicy %s signs people in, but nothing routes /jwtgate/login on %s to jwtgate: browsers sent to sign in get the app's 404; add a route for jwtgate's public paths (%s) on that host",
					p.Key(), h, strings.Join(publicPaths, ", "))
			}
		}
	}
}
