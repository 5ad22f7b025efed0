package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/jwtgate/jwtgate/authsvc/admin"
)

const revokeUsage = `Usage: jwtgate revoke --admin-token-file FILE --policy NAMESPACE/NAME (--sub USER | --session ID)

Ends every session of a user (--sub) or one session (--session) of a login
policy, through the admin API of a running jwtgate (--admin-bind-address).
With Redis, every replica refuses the sessions within a second; the user's
access tokens stay usable until they expire unless the policy says
spec.login.revocation: strict.

Flags:
`

func runRevoke(args []string) error { return revoke(os.Stdout, args) }

func revoke(out io.Writer, args []string) error {
	fs := flag.NewFlagSet("revoke", flag.ContinueOnError)
	fs.Usage = func() {
		_, _ = fmt.Fprint(fs.Output(), revokeUsage)
		fs.PrintDefaults()
	}
	adminURL := fs.String("admin-url", "http://127.0.0.1:9000", "URL of the admin API (the address of --admin-bind-address)")
	tokenFile := fs.String("admin-token-file", "", "file holding the admin token (the same as the server's --admin-token-file)")
	policy := fs.String("policy", "", "the login policy, as namespace/name")
	sub := fs.String("sub", "", "end every session of this user")
	sessionID := fs.String("session", "", "end this one session")
	by := fs.String("by", os.Getenv("USER"), "who revokes, kept in the token records")
	reason := fs.String("reason", "", "why, kept in the token records")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return exitError(2)
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("unexpected arguments %q (flags only)", fs.Args())
	case *tokenFile == "":
		return errors.New("--admin-token-file is required")
	case *policy == "":
		return errors.New("--policy namespace/name is required")
	case *sub == "" && *sessionID == "":
		return errors.New("name what to revoke: --sub USER (every session of the user) or --session ID")
	case *sub != "" && *sessionID != "":
		return errors.New("give --sub or --session, not both")
	}
	token, err := admin.LoadToken(*tokenFile)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	c := &admin.Client{URL: *adminURL, Token: token}
	res, err := c.Revoke(ctx, admin.RevokeRequest{Policy: *policy, User: *sub, Session: *sessionID, By: *by, Reason: *reason})
	if err != nil {
		return fmt.Errorf("%s: %w", *adminURL, err)
	}
	switch {
	case res.User != "":
		_, _ = fmt.Fprintf(out, "ended %d session(s) of %s in %s\n", res.Ended, res.User, res.Policy)
	case res.Ended > 0:
		_, _ = fmt.Fprintf(out, "ended session %s in %s\n", res.Session, res.Policy)
	default:
		_, _ = fmt.Fprintf(out, "session %s in %s was not alive (nothing to end)\n", res.Session, res.Policy)
	}
	return nil
}
