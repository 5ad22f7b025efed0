package main

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
)

// redisURLEnv names the environment variable that carries the Redis URL when
// --redis-url is not given. The process's arguments are readable by every user
// of the node (ps, /proc/PID/cmdline); its environment only by its own user.
const redisURLEnv = "JWTGATE_REDIS_URL"

// redisURLFrom resolves the session store's URL: --redis-url, else the file
// --redis-url-file names, else $JWTGATE_REDIS_URL; "" means in-process
// sessions. warning is set when a password came on the command line; it never
// quotes the URL.
func (c *commonFlags) redisURLFrom(getenv func(string) string) (redisURL, warning string, err error) {
	switch {
	case c.redisURL != "" && c.redisURLFile != "":
		return "", "", errors.New("--redis-url and --redis-url-file: set one, not both (prefer the file, or $" + redisURLEnv + ", which keep a password out of the process arguments)")
	case c.redisURL != "":
		redisURL = c.redisURL
		if urlHasPassword(redisURL) {
			warning = "--redis-url holds a password, which every user of this machine can read in the process arguments (ps, /proc/PID/cmdline): pass the URL in $" + redisURLEnv + " or --redis-url-file, or the password in --redis-password-file"
		}
	case c.redisURLFile != "":
		b, err := os.ReadFile(c.redisURLFile)
		if err != nil {
			return "", "", fmt.Errorf("--redis-url-file: %w", err)
		}
		redisURL = strings.TrimSpace(string(b))
		if redisURL == "" {
			return "", "", fmt.Errorf("--redis-url-file %s is empty: it must hold the whole URL, e.g. redis://:PASSWORD@host:6379/0", c.redisURLFile)
		}
	default:
		redisURL = strings.TrimSpace(getenv(redisURLEnv))
	}
	if redisURL == "" && c.redisPasswordFile != "" {
		return "", "", errors.New("--redis-password-file needs a Redis URL: --redis-url, --redis-url-file or $" + redisURLEnv)
	}
	return redisURL, warning, nil
}

// urlHasPassword reports whether a Redis URL carries a password in its user
// information, including URLs url.Parse refuses (several hosts).
func urlHasPassword(s string) bool {
	if strings.Contains(s, "sentinel_password=") { // redis-sentinel://...?sentinel_password=
		return true
	}
	if u, err := url.Parse(s); err == nil && u.User != nil {
		_, ok := u.User.Password()
		return ok
	}
	_, rest, ok := strings.Cut(s, "://")
	if !ok {
		return false
	}
	authority, _, _ := strings.Cut(rest, "/")
	at := strings.LastIndex(authority, "@")
	return at >= 0 && strings.Contains(authority[:at], ":")
}
