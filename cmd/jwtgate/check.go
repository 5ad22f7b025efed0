package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/jwtgate/jwtgate/authsvc/filesource"
	"github.com/jwtgate/jwtgate/authsvc/proxycheck"
	"github.com/jwtgate/jwtgate/authsvc/standalone"
)

func runCheck(args []string) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	var paths pathsFlag
	fs.Var(&paths, "f", "AuthPolicy, Secret and proxy (Ingress, HTTPRoute, ...) YAML file or folder (repeatable)")
	strict := fs.Bool("strict", false, "exit 1 on warnings about the proxy configuration too, not only on errors")
	serviceName := fs.String("service-name", "jwtgate",
		"jwtgate's Service, NAME or NAMESPACE/NAME: proxy objects whose auth URL or backend names it are checked")
	if err := fs.Parse(args); err != nil {
		return exitError(2)
	}
	service, err := parseServiceName(*serviceName)
	if err != nil {
		fmt.Fprintln(os.Stderr, "jwtgate check: --service-name:", err)
		return exitError(2)
	}
	paths = append(paths, fs.Args()...)
	if len(paths) == 0 {
		return errors.New("name the files or folders to check with -f")
	}
	problems, warnings := standalone.CheckWithWarnings(paths)
	for _, p := range problems {
		fmt.Fprintln(os.Stderr, p)
	}
	for _, w := range warnings {
		fmt.Fprintln(os.Stderr, "warning:", w)
	}
	bundle, _ := filesource.Load(paths)
	failing := printProxyFindings(os.Stderr, bundle, service, *strict)
	if len(problems) > 0 || failing > 0 {
		fmt.Fprintf(os.Stderr, "jwtgate check: %d problem(s)\n", len(problems)+failing)
		return exitError(1)
	}
	fmt.Printf("jwtgate check: %d policies and %d secrets are valid", len(bundle.Policies), len(bundle.Secrets))
	if len(warnings) > 0 {
		fmt.Printf(", with %d warning(s)", len(warnings))
	}
	fmt.Println()
	return nil
}

// printProxyFindings checks the proxy objects of the bundle against its
// policies, prints every finding and returns how many of them fail the check:
// errors, and with strict, warnings.
func printProxyFindings(w io.Writer, bundle *filesource.Bundle, svc proxycheck.Service, strict bool) int {
	if len(bundle.ProxyObjects) == 0 {
		return 0
	}
	policies := make([]proxycheck.Policy, 0, len(bundle.Policies))
	for _, p := range bundle.Policies {
		policies = append(policies, proxycheck.PolicyFrom(p))
	}
	failing := 0
	for _, f := range proxycheck.Check(proxycheck.Config{Service: svc}, bundle.ProxyObjects, policies) {
		_, _ = fmt.Fprintln(w, f)
		if f.Severity == proxycheck.SeverityError || (strict && f.Severity == proxycheck.SeverityWarning) {
			failing++
		}
	}
	return failing
}
