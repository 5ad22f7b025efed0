// Package users reads the users file of a sign-in policy: lines
// name:BCRYPT_HASH[:role,role], "#" comments and blank lines.
package users

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// User is one line of the users file.
type User struct {
	Name  string
	Hash  []byte
	Roles []string
}

// Fingerprint identifies the user's password hash without holding it: the
// first 128 bits of a SHA-256 over the hash (under a label of its own), so a
// session can notice a changed password. The hash's own salt is inside what
// is hashed, so the fingerprint does not help test password guesses.
func (u *User) Fingerprint() string {
	h := sha256.New()
	h.Write([]byte("jwtgate users password fingerprint v1\x00"))
	h.Write(u.Hash)
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:16])
}

// Table is a parsed users file. It is immutable once parsed.
type Table struct {
	byName  map[string]*User
	line    map[string]int // the line each name was loaded from
	maxCost int
	costs   []int // the distinct bcrypt costs, ascending
}

// Lookup returns the user with that name.
func (t *Table) Lookup(name string) (*User, bool) {
	if t == nil {
		return nil, false
	}
	u, ok := t.byName[name]
	return u, ok
}

// Len is the number of users.
func (t *Table) Len() int {
	if t == nil {
		return 0
	}
	return len(t.byName)
}

// MaxCost is the highest bcrypt cost in the table, or 0 when it is empty. A
// sign-in for an unknown user compares against a hash of this cost, so that it
// takes as long as one for a known user.
func (t *Table) MaxCost() int {
	if t == nil {
		return 0
	}
	return t.maxCost
}

// Costs returns the distinct bcrypt costs of the table's hashes, ascending.
// More than one means an unknown name (compared against a hash of MaxCost)
// takes longer than a known user of lower cost: `jwtgate check` warns.
func (t *Table) Costs() []int {
	if t == nil {
		return nil
	}
	return slices.Clone(t.costs)
}

// LineError is a line of the users file that was not loaded. Its message
// names the kind of mistake only, never what the line holds (a user name, a
// password): whoever may reference the Secret from a policy reads it back.
type LineError struct {
	Line    int
	Message string
}

func (e LineError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Message) }

const maxLine = 4096

// MaxCost is the highest bcrypt cost a users file may use (each step doubles the
// time of a sign-in; 16 is about 4 s on one core).
const MaxCost = 16

// Parse reads a users file. Lines that are wrong are returned as errors saying
// which line and how to fix it; every other line still loads.
func Parse(data []byte) (*Table, []LineError) {
	t := &Table{byName: map[string]*User{}, line: map[string]int{}}
	var errs []LineError
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 1024), maxLine)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		u, err := parseLine(line)
		if err != "" {
			errs = append(errs, LineError{Line: n, Message: err})
			continue
		}
		if first, dup := t.line[u.Name]; dup {
			errs = append(errs, LineError{Line: n, Message: fmt.Sprintf("the same user name as line %d; the first line is used", first)})
			continue
		}
		t.byName[u.Name] = u
		t.line[u.Name] = n
		c, _ := bcrypt.Cost(u.Hash)
		if c > t.maxCost {
			t.maxCost = c
		}
		if !slices.Contains(t.costs, c) {
			t.costs = append(t.costs, c)
			slices.Sort(t.costs)
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, LineError{Line: n + 1, Message: fmt.Sprintf("cannot read the file beyond this line: lines are limited to %d bytes", maxLine)})
	}
	return t, errs
}

func parseLine(line string) (*User, string) {
	name, rest, ok := strings.Cut(line, ":")
	if !ok || name == "" {
		return nil, "expected name:BCRYPT_HASH[:role,role]"
	}
	if strings.ContainsAny(name, " \t") {
		return nil, "the user name holds white space: write name:BCRYPT_HASH[:role,role]"
	}
	// A bcrypt hash ($2b$12$...) holds no ':', so the next ':' ends it.
	hash, roles, _ := strings.Cut(rest, ":")
	if !IsBcrypt(hash) {
		return nil, "the password is not a bcrypt hash (plain text, MD5 and SHA are refused): " +
			"replace it with the output of `jwtgate hash-password`"
	}
	if cost, _ := bcrypt.Cost([]byte(hash)); cost > MaxCost {
		return nil, fmt.Sprintf("the bcrypt cost is %d: above %d a sign-in takes seconds and ties up a CPU; make a new hash with `jwtgate hash-password --cost 12`", cost, MaxCost)
	}
	u := &User{Name: name, Hash: []byte(hash)}
	for _, r := range strings.Split(roles, ",") {
		if r = strings.TrimSpace(r); r != "" {
			u.Roles = append(u.Roles, r)
		}
	}
	return u, ""
}

// IsBcrypt reports whether s is a well-formed bcrypt hash.
func IsBcrypt(s string) bool {
	if len(s) != 60 || !(strings.HasPrefix(s, "$2a$") || strings.HasPrefix(s, "$2b$") || strings.HasPrefix(s, "$2y$")) {
		return false
	}
	_, err := bcrypt.Cost([]byte(s))
	return err == nil
}
