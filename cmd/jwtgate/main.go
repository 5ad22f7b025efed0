// Command jwtgate answers nginx auth_request subrequests: it verifies the JWT of a
// request against an AuthPolicy and says 200, 401 or 403.
package main

import (
	"fmt"
	"os"
	"strings"
)

const usage = `jwtgate: JWT authentication for nginx auth_request and ingress-nginx auth-url.

Usage:
  jwtgate serve -f PATH...            serve decisions from AuthPolicy and Secret YAML (files or folders)
  jwtgate controller [--kubeconfig FILE] [--leader-elect] [--watch-namespaces a,b]
                                      serve decisions from AuthPolicies and Secrets in a cluster
  jwtgate check -f PATH...            validate config offline and print every problem (like nginx -t)
  jwtgate hash-password [--cost 12]   bcrypt a password read from a prompt or stdin
  jwtgate keygen --alg ES256 [--namespace NS --name NAME]
                                      print a Secret manifest holding a new signing key
  jwtgate keygen --api-key NAME [--roles a,b]
                                      print a new API key and the line to store
  jwtgate token --key FILE --claims JSON [--ttl 5m]
                                      mint a token, for tests and curl
  jwtgate revoke --admin-url URL --admin-token-file F --policy NS/NAME (--sub USER | --session ID)
                                      end sessions through the admin API

Run 'jwtgate COMMAND --help' for the flags of a command.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	switch cmd {
	case "serve":
		err = runServe(args)
	case "controller":
		err = runController(args)
	case "check":
		err = runCheck(args)
	case "hash-password":
		err = runHashPassword(args)
	case "keygen":
		err = runKeygen(args)
	case "token":
		err = runToken(args)
	case "revoke":
		err = runRevoke(args)
	case "help", "-h", "--help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "jwtgate: unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
	if err != nil {
		if ee, ok := err.(exitError); ok {
			os.Exit(int(ee))
		}
		fmt.Fprintf(os.Stderr, "jwtgate %s: %v\n", cmd, err)
		os.Exit(1)
	}
}

// exitError ends the program with a status after the command printed its own output.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit %d", int(e)) }

// pathsFlag collects repeated -f values (and comma lists).
type pathsFlag []string

func (p *pathsFlag) String() string { return strings.Join(*p, ",") }
func (p *pathsFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s != "" {
			*p = append(*p, s)
		}
	}
	return nil
}
