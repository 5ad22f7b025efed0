package users

import (
	"strings"
	"testing"
)

// FuzzParse: any users file parses without panicking, and every user it loads
// has a well-formed bcrypt hash and a name without white space.
func FuzzParse(f *testing.F) {
	f.Add([]byte("# users\nalice:$2a$12$l3xiFdYj0Cc.FR03DJGCy.g5vn0zisqy/WEmiVJ8IxakNKgCcmsxy:admin,user\n"))
	f.Add([]byte("bob:plaintext\n\n:x\nno-colon\n"))
	f.Add([]byte("a:$2b$04$" + strings.Repeat("x", 53) + "::,,\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		table, _ := Parse(data)
		for name, u := range table.byName {
			if name == "" || strings.ContainsAny(name, " \t") || !IsBcrypt(string(u.Hash)) {
				t.Fatalf("loaded a bad user %q", name)
			}
		}
	})
}
