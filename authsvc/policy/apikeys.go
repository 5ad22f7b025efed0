package policy

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strings"
)

// apiKeyTable holds the SHA-256 hashes of a policy's API keys. Keys are long and
// random, so a fast hash is enough and keeps every request cheap.
type apiKeyTable struct {
	header string // canonical: spec.apiKeys.header or X-API-Key
	keys   []apiKey
}

type apiKey struct {
	sum      [sha256.Size]byte
	name     string
	roles    []string
	identity *Identity // built by Compile once the policy's claim slots are known
}

// lookup hashes the presented key and compares it with every stored hash in
// constant time, so neither the match nor its position shows in the timing.
func (t *apiKeyTable) lookup(presented string) *Identity {
	if t == nil || presented == "" || len(presented) > 1024 {
		return nil
	}
	sum := sha256.Sum256([]byte(presented))
	var found *Identity
	for i := range t.keys {
		if subtle.ConstantTimeCompare(sum[:], t.keys[i].sum[:]) == 1 {
			found = t.keys[i].identity
		}
	}
	return found
}

// parseAPIKeys reads lines name:sha256:HEX[:role,role]; "#" comments and blank
// lines are skipped. Bad lines are reported; the others load.
func parseAPIKeys(data []byte) (*apiKeyTable, []string) {
	t := &apiKeyTable{}
	var errs []string
	seen := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		parts := strings.SplitN(line, ":", 4)
		if len(parts) < 3 || parts[0] == "" || parts[1] != "sha256" {
			errs = append(errs, fmt.Sprintf("line %d: expected name:sha256:HEX[:role,role] (make one with `jwtgate keygen --api-key NAME`)", n))
			continue
		}
		raw, err := hex.DecodeString(parts[2])
		if err != nil || len(raw) != sha256.Size {
			errs = append(errs, fmt.Sprintf("line %d: the hash must be 64 hex digits of SHA-256 (make one with `jwtgate keygen --api-key NAME`)", n))
			continue
		}
		if first, dup := seen[parts[0]]; dup {
			errs = append(errs, fmt.Sprintf("line %d: the same key name as line %d", n, first))
			continue
		}
		seen[parts[0]] = n
		var roles []string
		if len(parts) == 4 {
			for _, r := range strings.Split(parts[3], ",") {
				if r = strings.TrimSpace(r); r != "" {
					roles = append(roles, r)
				}
			}
		}
		k := apiKey{name: parts[0], roles: roles}
		copy(k.sum[:], raw)
		t.keys = append(t.keys, k)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Sprintf("line %d: cannot read the key list beyond this line (a line over 64 KiB?)", n+1))
	}
	return t, errs
}
