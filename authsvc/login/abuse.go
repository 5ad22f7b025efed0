package login

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Limits say when failed sign-ins are slowed. After Free failures for one key
// (a client address, or a user name of a policy) within Window, that key is
// refused for Base, then twice as long after each further failure, up to Max:
// with FreePerUser 5, the sixth attempt is answered 429. An attempt counts as
// a failure from before its password is checked until it succeeds, so that
// parallel attempts cannot all pass the check before any has failed.
// A success clears the user name's count, never the address's: one good
// account must not reset a password-guessing address.
type Limits struct {
	FreePerAddress int
	FreePerUser    int
	Base, Max      time.Duration
	Window         time.Duration // a key's count is forgotten this long after its last failure
	MaxEntries     int           // bound of the counters kept
}

// DefaultLimits: 10 failures per address and 5 per user name, then 429 for
// 1 s, 2 s, 4 s, ... up to 15 minutes.
var DefaultLimits = Limits{
	FreePerAddress: 10,
	FreePerUser:    5,
	Base:           time.Second,
	Max:            15 * time.Minute,
	Window:         time.Hour,
	MaxEntries:     100_000,
}

type failures struct {
	count int
	last  time.Time
	until time.Time // refused before this
}

// limiter counts failed sign-ins by key.
type limiter struct {
	l  Limits
	mu sync.Mutex
	m  map[string]*failures
}

func newLimiter(l Limits) *limiter {
	return &limiter{l: l, m: map[string]*failures{}}
}

// reserve counts an attempt as a failure against both keys before its
// password is checked, or returns how long they are still refused for (and
// counts nothing). Checking and counting under one lock is what bounds a
// parallel burst: at most free attempts of a key are ever past this point
// within its window. release gives back an attempt that turned out not to be
// a failure.
func (lm *limiter) reserve(now time.Time, addrKey string, addrFree int, uKey string, userFree int) time.Duration {
	lm.mu.Lock()
	defer lm.mu.Unlock()
	var wait time.Duration
	for _, k := range []string{addrKey, uKey} {
		if f := lm.m[k]; f != nil && now.Before(f.until) {
			wait = max(wait, f.until.Sub(now))
		}
	}
	if wait > 0 {
		return wait
	}
	lm.failLocked(now, addrKey, addrFree)
	lm.failLocked(now, uKey, userFree)
	return 0
}

// failLocked counts a failure against a key that is free for free failures:
// the free-th failure starts the wait.
func (lm *limiter) failLocked(now time.Time, key string, free int) {
	f := lm.m[key]
	if f == nil {
		if len(lm.m) >= lm.l.MaxEntries {
			lm.sweepLocked(now)
		}
		f = &failures{}
		lm.m[key] = f
	} else if now.Sub(f.last) > lm.l.Window && !now.Before(f.until) {
		*f = failures{}
	}
	f.count++
	f.last = now
	if over := f.count - free + 1; over > 0 {
		d := lm.l.Base
		for i := 1; i < over && d < lm.l.Max; i++ {
			d *= 2
		}
		d = min(d, lm.l.Max)
		f.until = now.Add(d)
	}
}

// release takes back one attempt reserve counted against key (the password
// was right, or it was never checked). The wait it started ends with it;
// one that other failures started stays.
func (lm *limiter) release(key string, free int) {
	lm.mu.Lock()
	defer lm.mu.Unlock()
	f := lm.m[key]
	if f == nil || f.count == 0 {
		return
	}
	f.count--
	if f.count < free {
		f.until = time.Time{}
	}
}

func (lm *limiter) clear(key string) {
	lm.mu.Lock()
	defer lm.mu.Unlock()
	delete(lm.m, key)
}

// sweepLocked forgets counters past their window; if that frees nothing it
// drops an arbitrary tenth, so that a flood of addresses cannot grow memory.
func (lm *limiter) sweepLocked(now time.Time) {
	for k, f := range lm.m {
		if now.Sub(f.last) > lm.l.Window && !now.Before(f.until) {
			delete(lm.m, k)
		}
	}
	if len(lm.m) < lm.l.MaxEntries {
		return
	}
	drop := max(1, lm.l.MaxEntries/10)
	for k := range lm.m {
		delete(lm.m, k)
		if drop--; drop == 0 {
			break
		}
	}
}

func addressKey(a netip.Addr) string {
	if a.Is6() && !a.Is4In6() {
		// One IPv6 client usually holds a whole /64.
		p, _ := a.Prefix(64)
		return "a:" + p.String()
	}
	return "a:" + a.Unmap().String()
}

func userKey(policyKey, user string) string { return "u:" + policyKey + "\x00" + user }

// ParseTrustedProxies reads --trusted-proxies: comma-separated CIDRs or single
// addresses.
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, fmt.Errorf("--trusted-proxies: %q is neither a CIDR nor an address", f)
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("--trusted-proxies: %q is not a CIDR (e.g. 10.0.0.0/8)", f)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func trusted(a netip.Addr, proxies []netip.Prefix) bool {
	a = a.Unmap()
	for _, p := range proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ClientAddr is the address failures are counted against: the direct peer,
// unless the peer is a trusted proxy; then the right-most address of
// X-Forwarded-For that is not a trusted proxy (what each proxy appended, so no
// client can choose it), or X-Real-IP.
func ClientAddr(r *http.Request, proxies []netip.Prefix) netip.Addr {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	var a netip.Addr
	if err == nil {
		a = peer.Addr().Unmap()
	} else if pa, err := netip.ParseAddr(r.RemoteAddr); err == nil {
		a = pa.Unmap()
	}
	if !a.IsValid() || !trusted(a, proxies) {
		return a
	}
	if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		hops := strings.Split(strings.Join(xff, ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			h, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break
			}
			h = h.Unmap()
			if !trusted(h, proxies) {
				return h
			}
			a = h
		}
		return a
	}
	if xr, err := netip.ParseAddr(strings.TrimSpace(r.Header.Get("X-Real-IP"))); err == nil {
		return xr.Unmap()
	}
	return a
}
