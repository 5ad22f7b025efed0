package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The Redis URL, password included, can reach jwtgate without being in its
// argv (world-readable in /proc/PID/cmdline and ps): from JWTGATE_REDIS_URL or
// from a file. A password given on the command line still works, with a
// warning that says how to move it.
func TestRedisURLSources(t *testing.T) {
	dir := t.TempDir()
	urlFile := filepath.Join(dir, "url")
	if err := os.WriteFile(urlFile, []byte("redis://:from-file@redis:6379/0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name    string
		args    []string
		env     string
		want    string
		warn    string // part of the warning, "" for none
		errPart string // part of the error, "" for none
	}{
		{"nothing: in-process sessions", nil, "", "", "", ""},
		{"environment", nil, "redis://:from-env@redis:6379/0", "redis://:from-env@redis:6379/0", "", ""},
		{"file", []string{"--redis-url-file", urlFile}, "", "redis://:from-file@redis:6379/0", "", ""},
		{"file wins over the environment", []string{"--redis-url-file", urlFile}, "redis://:from-env@redis:6379/0", "redis://:from-file@redis:6379/0", "", ""},
		{"flag without password: no warning", []string{"--redis-url", "redis://redis:6379/0"}, "", "redis://redis:6379/0", "", ""},
		{"flag wins over the environment", []string{"--redis-url", "redis://other:6379/0"}, "redis://:from-env@redis:6379/0", "redis://other:6379/0", "", ""},
		{"password in argv: warned", []string{"--redis-url", "redis://:hunter2@redis:6379/0"}, "", "redis://:hunter2@redis:6379/0", "JWTGATE_REDIS_URL", ""},
		{"user and password in argv: warned", []string{"--redis-url", "rediss://app:hunter2@redis:6379/0"}, "", "rediss://app:hunter2@redis:6379/0", "process arguments", ""},
		{"sentinel password in argv: warned", []string{"--redis-url", "redis-sentinel://[::1]:26379,s2:26379/mymaster/0?sentinel_password=hunter2"}, "",
			"redis-sentinel://[::1]:26379,s2:26379/mymaster/0?sentinel_password=hunter2", "process arguments", ""},
		{"master password in a sentinel URL in argv: warned", []string{"--redis-url", "redis-sentinel://:hunter2@[::1]:26379,[::2]:26379/mymaster"}, "",
			"redis-sentinel://:hunter2@[::1]:26379,[::2]:26379/mymaster", "process arguments", ""},
		{"cluster URL without password: no warning", []string{"--redis-url", "redis-cluster://n1:6379,n2:6379"}, "", "redis-cluster://n1:6379,n2:6379", "", ""},
		{"flag and file", []string{"--redis-url", "redis://r:6379", "--redis-url-file", urlFile}, "", "", "", "not both"},
		{"missing file", []string{"--redis-url-file", filepath.Join(dir, "nope")}, "", "", "", "--redis-url-file"},
		{"empty file", []string{"--redis-url-file", empty}, "", "", "", "empty"},
		{"password file without a URL", []string{"--redis-password-file", urlFile}, "", "", "", "--redis-password-file needs"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("serve", flag.ContinueOnError)
			var c commonFlags
			c.register(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			getenv := func(k string) string {
				if k == "JWTGATE_REDIS_URL" {
					return tc.env
				}
				return ""
			}
			got, warn, err := c.redisURLFrom(getenv)
			if tc.errPart != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errPart) {
					t.Fatalf("error %v, want one mentioning %q", err, tc.errPart)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("URL %q, want %q", got, tc.want)
			}
			if tc.warn == "" && warn != "" || tc.warn != "" && !strings.Contains(warn, tc.warn) {
				t.Errorf("warning %q, want one holding %q", warn, tc.warn)
			}
			if strings.Contains(warn, "hunter2") || err != nil && strings.Contains(err.Error(), "from-file") {
				t.Errorf("the password is quoted back: %q %v", warn, err)
			}
		})
	}
}

// --help must not print the URL from the environment as a default value.
func TestRedisURLNotInHelp(t *testing.T) {
	t.Setenv("JWTGATE_REDIS_URL", "redis://:hunter2@redis:6379/0")
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var out strings.Builder
	fs.SetOutput(&out)
	var c commonFlags
	c.register(fs)
	fs.PrintDefaults()
	if strings.Contains(out.String(), "hunter2") {
		t.Errorf("--help shows the password:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "JWTGATE_REDIS_URL") || !strings.Contains(out.String(), "redis-url-file") {
		t.Errorf("--help does not name JWTGATE_REDIS_URL and --redis-url-file:\n%s", out.String())
	}
}
