package users

import (
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// Issue 12 item 12: a users file that mixes bcrypt costs makes an unknown
// name (compared against the highest cost) time differently from users of
// lower cost, so the file reports it.
func TestCosts(t *testing.T) {
	h4, _ := bcrypt.GenerateFromPassword([]byte("pw"), 4)
	h5, _ := bcrypt.GenerateFromPassword([]byte("pw"), 5)
	same, _ := Parse([]byte("a:" + string(h4) + "\nb:" + string(h4) + "\n"))
	if got := same.Costs(); len(got) != 1 || got[0] != 4 {
		t.Fatalf("Costs() = %v, want [4]", got)
	}
	mixed, _ := Parse([]byte("a:" + string(h5) + "\nb:" + string(h4) + "\n"))
	if got := mixed.Costs(); len(got) != 2 || got[0] != 4 || got[1] != 5 {
		t.Fatalf("Costs() = %v, want [4 5]", got)
	}
}
