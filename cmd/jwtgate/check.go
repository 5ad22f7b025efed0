package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/jwtgate/jwtgate/authsvc/filesource"
	"github.com/jwtgate/jwtgate/authsvc/standalone"
)

func runCheck(args []string) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	var paths pathsFlag
	fs.Var(&paths, "f", "AuthPolicy and Secret YAML file or folder (repeatable)")
	if err := fs.Parse(args); err != nil {
		return exitError(2)
	}
	paths = append(paths, fs.Args()...)
	if len(paths) == 0 {
		return errors.New("name the files or folders to check with -f")
	}
	problems := standalone.Check(paths)
	for _, p := range problems {
		fmt.Fprintln(os.Stderr, p)
	}
	if len(problems) > 0 {
		fmt.Fprintf(os.Stderr, "jwtgate check: %d problem(s)\n", len(problems))
		return exitError(1)
	}
	bundle, _ := filesource.Load(paths)
	fmt.Printf("jwtgate check: %d policies and %d secrets are valid\n", len(bundle.Policies), len(bundle.Secrets))
	return nil
}
