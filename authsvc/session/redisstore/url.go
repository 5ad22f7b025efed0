package redisstore

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Mode is how jwtgate reaches Redis.
type Mode string

// The modes of --redis-url.
const (
	ModeSingle   Mode = "single"   // redis://, rediss://: one server
	ModeSentinel Mode = "sentinel" // redis-sentinel://, rediss-sentinel://: a master found through Sentinel
	ModeCluster  Mode = "cluster"  // redis-cluster://, rediss-cluster://: Redis Cluster
)

// Defaults of the high-availability modes.
const (
	DefaultSentinelPort = 26379
	DefaultClusterPort  = 6379
	// An ended session is acknowledged once this many replicas hold it.
	DefaultWaitReplicas = 1
	// How long an end waits for its replicas before answering 503.
	DefaultWaitTimeout = time.Second
	maxWaitTimeout     = 5 * time.Second
)

// Target is a parsed --redis-url.
//
// Sentinel: redis-sentinel://[[user]:password@]host1:26379,host2:26379/MASTER_NAME[/DB][?params]
// (rediss-sentinel:// for TLS to the sentinels and the servers). The userinfo
// is the master's (and its replicas'), never the sentinels'; theirs is the
// sentinel_password parameter (and sentinel_username).
//
// Cluster: redis-cluster://[[user]:password@]host1:6379,host2:6379[/0][?params]
// (rediss-cluster:// for TLS); the hosts are seeds, the rest is discovered.
//
// Parameters of both: wait_replicas (replicas that must hold an ended session
// before it is acknowledged; default 1, 0 turns the wait off) and wait_timeout
// (default 1s). IPv6 hosts are bracketed: [::1]:26379. A password holding
// @ / ? # or % is percent-encoded.
//
// Single-node URLs (redis://, rediss://) are read by go-redis, as before.
type Target struct {
	Mode  Mode
	TLS   bool
	Addrs []string // host:port of the server, the sentinels or the cluster's seed nodes
	// MasterName is the name Sentinel knows the master by.
	MasterName string
	DB         int
	// Username and Password are the master's and its replicas' (cluster: every
	// node's).
	Username, Password string
	// SentinelUsername and SentinelPassword are the sentinels' own.
	SentinelUsername, SentinelPassword string
	// WaitReplicas: an ended session is acknowledged only when this many
	// replicas hold it (WAIT). Sentinel and cluster: DefaultWaitReplicas unless
	// wait_replicas says otherwise; single: 0.
	WaitReplicas int
	WaitTimeout  time.Duration

	single *redis.Options // ModeSingle: go-redis's reading of the URL
}

// errNoURL says what a URL looks like.
var errNoURL = errors.New("redis: no URL; want redis://[:password@]host:6379[/db], rediss:// (TLS), " +
	"redis-sentinel://[:password@]host1:26379,host2:26379/MASTER_NAME[/DB] or redis-cluster://[:password@]host1:6379,host2:6379")

// encodeHint ends the errors a password that is not percent-encoded can cause.
const encodeHint = " (a password holding @ / ? # or % must be percent-encoded: @ is %40, / is %2F)"

// ParseURL reads --redis-url. Its errors never hold the URL's passwords, nor
// any other part of the URL that could be a piece of one: they say which part
// is wrong and how it should look.
func ParseURL(raw string) (Target, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return Target{}, errNoURL
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return Target{}, errors.New("redis URL: no scheme; it starts with redis://, rediss://, redis-sentinel://, rediss-sentinel://, redis-cluster:// or rediss-cluster://")
	}
	switch strings.ToLower(scheme) {
	case "redis", "rediss", "unix":
		return parseSingle(raw)
	case "redis-sentinel":
		return parseHA(ModeSentinel, false, rest)
	case "rediss-sentinel":
		return parseHA(ModeSentinel, true, rest)
	case "redis-cluster":
		return parseHA(ModeCluster, false, rest)
	case "rediss-cluster":
		return parseHA(ModeCluster, true, rest)
	}
	return Target{}, errors.New("redis URL: unknown scheme; want redis://, rediss://, redis-sentinel://, rediss-sentinel://, redis-cluster:// or rediss-cluster://")
}

func parseSingle(raw string) (Target, error) {
	ro, err := redis.ParseURL(raw)
	if err != nil {
		return Target{}, fmt.Errorf("redis URL %s: %w", redact(raw), redactErr(err, raw))
	}
	return Target{
		Mode: ModeSingle, TLS: ro.TLSConfig != nil, Addrs: []string{ro.Addr}, DB: ro.DB,
		Username: ro.Username, Password: ro.Password, single: ro,
	}, nil
}

// parseHA reads what follows the scheme of a sentinel or cluster URL.
func parseHA(mode Mode, tls bool, rest string) (Target, error) {
	scheme := "redis-" + string(mode)
	if tls {
		scheme = "rediss-" + string(mode)
	}
	fail := func(format string, a ...any) (Target, error) {
		return Target{}, fmt.Errorf(scheme+" URL: "+format, a...)
	}
	t := Target{Mode: mode, TLS: tls, WaitReplicas: DefaultWaitReplicas, WaitTimeout: DefaultWaitTimeout}

	// The authority ends at the first / ? or #, as in net/url; the userinfo is
	// what comes before its last @.
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority, tail := rest[:end], rest[end:]
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		userinfo := authority[:i]
		authority = authority[i+1:]
		user, pass, hasPass := strings.Cut(userinfo, ":")
		var err error
		if t.Username, err = url.PathUnescape(user); err != nil {
			return fail("the user name before the @ is not valid percent-encoding" + encodeHint)
		}
		if hasPass {
			if t.Password, err = url.PathUnescape(pass); err != nil {
				return fail("the password before the @ is not valid percent-encoding" + encodeHint)
			}
		}
		if t.Username != "" && t.Password == "" {
			return fail("a user name without a password; write user:password@ or :password@")
		}
	}

	defPort := DefaultSentinelPort
	what := "sentinel"
	if mode == ModeCluster {
		defPort, what = DefaultClusterPort, "cluster node"
	}
	if authority == "" {
		return fail("no %s address; list them after the scheme, comma separated: host1:%d,host2:%d", what, defPort, defPort)
	}
	hosts := strings.Split(authority, ",")
	for i, h := range hosts {
		addr, err := hostPort(h, defPort)
		if err != nil {
			return fail("%s address %d of %d %v%s", what, i+1, len(hosts), err, encodeHint)
		}
		t.Addrs = append(t.Addrs, addr)
	}

	if i := strings.IndexByte(tail, '#'); i >= 0 {
		return fail("a URL fragment (#...) has no meaning here" + encodeHint)
	}
	path, query, _ := strings.Cut(tail, "?")
	if err := t.parsePath(path); err != nil {
		return fail("%v", err)
	}
	if err := t.parseQuery(query); err != nil {
		return fail("%v", err)
	}
	return t, nil
}

// hostPort checks one entry of the host list: host, host:port, [v6] or
// [v6]:port. Its errors do not repeat the entry (it may be a piece of a
// password that was not percent-encoded).
func hostPort(h string, defPort int) (string, error) {
	if h == "" {
		return "", errors.New("is empty (two commas, or a comma at an end)")
	}
	host, port := h, ""
	if strings.HasPrefix(h, "[") {
		i := strings.IndexByte(h, ']')
		if i < 0 {
			return "", errors.New("opens a [ for an IPv6 address and does not close it")
		}
		host = h[1:i]
		switch after := h[i+1:]; {
		case after == "":
		case strings.HasPrefix(after, ":"):
			port = after[1:]
		default:
			return "", errors.New("has something other than :port after the ] of its IPv6 address")
		}
		ip := net.ParseIP(host)
		if ip == nil || ip.To4() != nil && !strings.Contains(host, ":") {
			return "", errors.New("has brackets around something that is not an IPv6 address")
		}
	} else {
		switch strings.Count(h, ":") {
		case 0:
		case 1:
			host, port, _ = strings.Cut(h, ":")
		default:
			return "", errors.New("looks like an IPv6 address without brackets; write [::1]:port")
		}
		if host == "" {
			return "", errors.New("has no host name before its :port")
		}
		for _, c := range host {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
				return "", errors.New("is not a host name (letters, digits, dots, dashes) or an IP address")
			}
		}
	}
	p := defPort
	if port != "" || strings.HasSuffix(h, ":") {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || port[0] == '+' {
			return "", errors.New("has a port that is not a number from 1 to 65535")
		}
		p = n
	}
	return net.JoinHostPort(host, strconv.Itoa(p)), nil
}

// parsePath reads /MASTER_NAME[/DB] (sentinel) or nothing, / or /0 (cluster).
func (t *Target) parsePath(path string) error {
	segs := []string{}
	if path != "" {
		segs = strings.Split(strings.TrimPrefix(path, "/"), "/")
	}
	if t.Mode == ModeCluster {
		switch {
		case len(segs) == 0, len(segs) == 1 && (segs[0] == "" || segs[0] == "0"):
			return nil
		default:
			return errors.New("a path after the hosts; Redis Cluster has only database 0, so none is needed")
		}
	}
	if len(segs) == 0 || segs[0] == "" {
		return errors.New("no master name; write the name the sentinels know the master by after the hosts: /mymaster")
	}
	if len(segs) > 2 {
		return errors.New("more than /MASTER_NAME/DB after the hosts" + encodeHint)
	}
	name, err := url.PathUnescape(segs[0])
	if err != nil || name == "" || strings.IndexFunc(name, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		return errors.New("the master name is not valid: no spaces or control characters, percent-encoded where needed")
	}
	t.MasterName = name
	if len(segs) == 2 {
		db, err := strconv.Atoi(segs[1])
		if err != nil || db < 0 || db > 1<<16 || segs[1][0] == '+' {
			return errors.New("the database after the master name is not a number (0, 1, ...)")
		}
		t.DB = db
	}
	return nil
}

// parseQuery reads the parameters. Unknown ones are refused, so that a
// misspelled sentinel_password is not silently ignored.
func (t *Target) parseQuery(query string) error {
	if query == "" {
		return nil
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return errors.New("the parameters after ? are not valid percent-encoding" + encodeHint)
	}
	known := "wait_replicas, wait_timeout"
	if t.Mode == ModeSentinel {
		known = "sentinel_password, sentinel_username, " + known
	}
	for k, v := range q {
		if len(v) != 1 {
			return errors.New("a parameter is given more than once; known parameters: " + known)
		}
		val := v[0]
		switch {
		case k == "sentinel_password" && t.Mode == ModeSentinel:
			t.SentinelPassword = val
		case k == "sentinel_username" && t.Mode == ModeSentinel:
			t.SentinelUsername = val
		case k == "wait_replicas":
			n, err := strconv.Atoi(val)
			if err != nil || n < 0 || n > 64 {
				return errors.New("wait_replicas is not a number from 0 (no wait) to 64")
			}
			t.WaitReplicas = n
		case k == "wait_timeout":
			d, err := time.ParseDuration(val)
			if err != nil || d <= 0 || d > maxWaitTimeout {
				return errors.New("wait_timeout is not a duration from 1ms to 5s, such as 500ms or 2s")
			}
			t.WaitTimeout = d
		default:
			// The name is not repeated: it may be a piece of a password.
			return errors.New("an unknown parameter; known parameters: " + known + encodeHint)
		}
	}
	if t.SentinelUsername != "" && t.SentinelPassword == "" {
		return errors.New("sentinel_username without sentinel_password")
	}
	return nil
}

// String is the URL without its passwords, for logs.
func (t Target) String() string {
	if t.Mode == ModeSingle {
		host := strings.Join(t.Addrs, ",")
		s := "redis://"
		if t.TLS {
			s = "rediss://"
		}
		return s + userinfo(t.Username, t.Password) + host + "/" + strconv.Itoa(t.DB)
	}
	s := "redis-"
	if t.TLS {
		s = "rediss-"
	}
	s += string(t.Mode) + "://" + userinfo(t.Username, t.Password) + strings.Join(t.Addrs, ",")
	if t.Mode == ModeSentinel {
		s += "/" + url.PathEscape(t.MasterName) + "/" + strconv.Itoa(t.DB)
	}
	var q []string
	if t.SentinelPassword != "" {
		if t.SentinelUsername != "" {
			q = append(q, "sentinel_username="+url.QueryEscape(t.SentinelUsername))
		}
		q = append(q, "sentinel_password=xxxxx")
	}
	if t.WaitReplicas != DefaultWaitReplicas {
		q = append(q, "wait_replicas="+strconv.Itoa(t.WaitReplicas))
	}
	if t.WaitTimeout != DefaultWaitTimeout {
		q = append(q, "wait_timeout="+t.WaitTimeout.String())
	}
	if len(q) > 0 {
		s += "?" + strings.Join(q, "&")
	}
	return s
}

func userinfo(user, pass string) string {
	switch {
	case pass != "" && user != "":
		return url.PathEscape(user) + ":xxxxx@"
	case pass != "":
		return ":xxxxx@"
	case user != "":
		return url.PathEscape(user) + "@"
	}
	return ""
}
