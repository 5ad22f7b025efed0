package redisstore

import (
	"net"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		want      Target
	}{
		{"single", "redis://:s3cret@127.0.0.1:6379/2",
			Target{Mode: ModeSingle, Addrs: []string{"127.0.0.1:6379"}, DB: 2, Password: "s3cret"}},
		{"single TLS", "rediss://cache.example:6380",
			Target{Mode: ModeSingle, TLS: true, Addrs: []string{"cache.example:6380"}}},
		{"sentinel", "redis-sentinel://:m%40ster@s1:26379,s2:26380/mymaster",
			Target{Mode: ModeSentinel, Addrs: []string{"s1:26379", "s2:26380"}, MasterName: "mymaster", Password: "m@ster",
				WaitReplicas: 1, WaitTimeout: time.Second}},
		{"sentinel default ports, db, sentinel password", "redis-sentinel://s1,s2,s3/mymaster/3?sentinel_password=sent%26inel",
			Target{Mode: ModeSentinel, Addrs: []string{"s1:26379", "s2:26379", "s3:26379"}, MasterName: "mymaster", DB: 3,
				SentinelPassword: "sent&inel", WaitReplicas: 1, WaitTimeout: time.Second}},
		{"sentinel IPv6 list", "rediss-sentinel://app:apppw1@[::1]:26379,[fd00::2],10.0.0.3:26381/ha%2Dx?sentinel_username=s&sentinel_password=sentpw",
			Target{Mode: ModeSentinel, TLS: true, Addrs: []string{"[::1]:26379", "[fd00::2]:26379", "10.0.0.3:26381"},
				MasterName: "ha-x", Username: "app", Password: "apppw1", SentinelUsername: "s", SentinelPassword: "sentpw",
				WaitReplicas: 1, WaitTimeout: time.Second}},
		{"sentinel password with a colon", "redis-sentinel://:a:b@h/m",
			Target{Mode: ModeSentinel, Addrs: []string{"h:26379"}, MasterName: "m", Password: "a:b", WaitReplicas: 1, WaitTimeout: time.Second}},
		{"sentinel wait options", "redis-sentinel://h/m?wait_replicas=2&wait_timeout=250ms",
			Target{Mode: ModeSentinel, Addrs: []string{"h:26379"}, MasterName: "m", WaitReplicas: 2, WaitTimeout: 250 * time.Millisecond}},
		{"sentinel no wait", "redis-sentinel://h/m?wait_replicas=0",
			Target{Mode: ModeSentinel, Addrs: []string{"h:26379"}, MasterName: "m", WaitReplicas: 0, WaitTimeout: time.Second}},
		{"cluster", "redis-cluster://:clusterpw@n1:7000,n2,[::1]:7002",
			Target{Mode: ModeCluster, Addrs: []string{"n1:7000", "n2:6379", "[::1]:7002"}, Password: "clusterpw", WaitReplicas: 1, WaitTimeout: time.Second}},
		{"cluster TLS slash zero", "rediss-cluster://n1:7000/0",
			Target{Mode: ModeCluster, TLS: true, Addrs: []string{"n1:7000"}, WaitReplicas: 1, WaitTimeout: time.Second}},
		{"cluster trailing slash", "redis-cluster://n1:7000/",
			Target{Mode: ModeCluster, Addrs: []string{"n1:7000"}, WaitReplicas: 1, WaitTimeout: time.Second}},
		{"scheme case", "REDIS-CLUSTER://n1",
			Target{Mode: ModeCluster, Addrs: []string{"n1:6379"}, WaitReplicas: 1, WaitTimeout: time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseURL(tc.raw)
			if err != nil {
				t.Fatal(err)
			}
			got.single = nil
			if !slices.Equal(got.Addrs, tc.want.Addrs) {
				t.Fatalf("addrs %q, want %q", got.Addrs, tc.want.Addrs)
			}
			if s := got.String(); (got.Password != "" && strings.Contains(s, got.Password)) ||
				(got.SentinelPassword != "" && strings.Contains(s, got.SentinelPassword)) {
				t.Fatalf("String() shows a password: %s", s)
			}
			got.Addrs, tc.want.Addrs = nil, nil
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseURLErrors(t *testing.T) {
	const pw = "Sup3rS3cret"
	for _, tc := range []struct{ name, raw, want string }{
		{"empty", "", "no URL"},
		{"no scheme", "h1:26379/m", "no scheme"},
		{"unknown scheme", "redis-ring://" + pw + "@h/m", "unknown scheme"},
		{"no hosts", "redis-sentinel://:" + pw + "@/m", "no sentinel address"},
		{"empty host", "redis-sentinel://:" + pw + "@h1,,h2/m", "sentinel address 2 of 3 is empty"},
		{"bad port", "redis-sentinel://:" + pw + "@h1:99999/m", "port that is not a number"},
		{"empty port", "redis-cluster://:" + pw + "@h1:/m", "port that is not a number"},
		{"unbracketed IPv6", "redis-cluster://:" + pw + "@::1:7000", "IPv6 address without brackets"},
		{"unclosed bracket", "redis-cluster://:" + pw + "@[::1:7000", "does not close"},
		{"bracketed IPv4", "redis-cluster://[127.0.0.1]:7000", "not an IPv6"},
		{"junk after bracket", "redis-cluster://[::1]x", "other than :port"},
		{"bad host chars", "redis-sentinel://h%20x/m", "not a host name"},
		{"no master", "redis-sentinel://:" + pw + "@h1", "no master name"},
		{"no master slash", "redis-sentinel://:" + pw + "@h1/", "no master name"},
		{"bad db", "redis-sentinel://:" + pw + "@h1/m/x", "database"},
		{"too deep", "redis-sentinel://:" + pw + "@h1/m/1/2", "more than /MASTER_NAME/DB"},
		{"cluster db", "redis-cluster://:" + pw + "@h1/3", "only database 0"},
		{"unknown param", "redis-sentinel://h1/m?sentinel_pasword=" + pw, "unknown parameter"},
		{"sentinel param on cluster", "redis-cluster://h1?sentinel_password=" + pw, "unknown parameter"},
		{"repeated param", "redis-sentinel://h1/m?sentinel_password=" + pw + "&sentinel_password=x", "more than once"},
		{"bad wait", "redis-sentinel://h1/m?wait_replicas=-1", "wait_replicas"},
		{"bad wait timeout", "redis-sentinel://h1/m?wait_timeout=1h", "wait_timeout"},
		{"user without password", "redis-sentinel://bob@h1/m", "user name without a password"},
		{"sentinel user without password", "redis-sentinel://h1/m?sentinel_username=bob", "sentinel_username without"},
		{"bad escape in password", "redis-sentinel://:" + pw + "%zz@h1/m", "password before the @ is not valid"},
		{"bad escape in query", "redis-sentinel://h1/m?sentinel_password=" + pw + "%zz", "not valid percent-encoding"},
		{"fragment", "redis-sentinel://:" + pw + "@h1/m#" + pw, "fragment"},
		// A password that holds an unencoded / ends the host list inside it:
		// the error must not show the pieces.
		{"unencoded slash in password", "redis-sentinel://:" + pw[:5] + "/" + pw[5:] + "@h1/m", "percent-encoded"},
		{"unencoded question mark in password", "redis-cluster://:" + pw[:5] + "?" + pw[5:] + "@h1", "percent-encoded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseURL(tc.raw)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) {
				t.Fatalf("error %q does not say %q", msg, tc.want)
			}
			for _, piece := range []string{pw, pw[:5], pw[5:]} {
				if strings.Contains(msg, piece) {
					t.Fatalf("error shows a piece of the password %q: %s", piece, msg)
				}
			}
		})
	}
}

// FuzzParseURL: no input crashes the parser; an error never shows the
// userinfo or the sentinel password; a parsed URL has usable addresses and a
// String without passwords.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"redis-sentinel://:pw@h1:26379,h2:26379/mymaster/1?sentinel_password=sp",
		"rediss-sentinel://u:p@[::1]:26379,[fe80::1]/m?wait_replicas=2&wait_timeout=1s",
		"redis-cluster://:pw@n1:7000,n2:7001,n3",
		"rediss-cluster://[::1]:7000/0",
		"redis-sentinel://:p/w@h/m",
		"redis-cluster://:p?w@h",
		"redis-sentinel://:p%zz@h/m",
		"redis://:pw@localhost:6379/0",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := ParseURL(raw)
		if err != nil {
			msg := err.Error()
			scheme, rest, ok := strings.Cut(raw, "://")
			if !ok || strings.HasPrefix(strings.ToLower(scheme), "redis") && !strings.Contains(scheme, "-") {
				return // single-node URLs are go-redis's, redacted as before
			}
			// Everything before the last @ could be the userinfo.
			if i := strings.LastIndex(rest, "@"); i >= 0 {
				ui := rest[:i]
				if _, pass, ok := strings.Cut(ui, ":"); ok && len(pass) >= 4 && strings.Contains(msg, pass) {
					t.Fatalf("error shows the password %q: %s", pass, msg)
				}
			}
			if _, q, ok := strings.Cut(raw, "sentinel_password="); ok {
				q, _, _ = strings.Cut(q, "&")
				if len(q) >= 4 && strings.Contains(msg, q) {
					t.Fatalf("error shows the sentinel password %q: %s", q, msg)
				}
			}
			return
		}
		if len(got.Addrs) == 0 {
			t.Fatalf("%q: parsed without an address", raw)
		}
		if got.Mode == ModeSingle {
			return
		}
		for _, a := range got.Addrs {
			if _, _, err := net.SplitHostPort(a); err != nil {
				t.Fatalf("%q: address %q: %v", raw, a, err)
			}
		}
		if got.Mode == ModeSentinel && got.MasterName == "" {
			t.Fatalf("%q: sentinel without a master name", raw)
		}
		s := got.String()
		if len(got.Password) >= 4 && strings.Contains(s, got.Password) || len(got.SentinelPassword) >= 4 && strings.Contains(s, got.SentinelPassword) {
			t.Fatalf("%q: String shows a password: %s", raw, s)
		}
		// What String writes reads back the same (but for the passwords).
		again, err := ParseURL(s)
		if err != nil {
			t.Fatalf("%q: String %q does not parse: %v", raw, s, err)
		}
		if !slices.Equal(again.Addrs, got.Addrs) || again.MasterName != got.MasterName || again.DB != got.DB ||
			again.WaitReplicas != got.WaitReplicas || again.WaitTimeout != got.WaitTimeout || again.TLS != got.TLS {
			t.Fatalf("%q: String %q reads back as %+v, want %+v", raw, s, again, got)
		}
	})
}
