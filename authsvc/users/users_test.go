package users

import (
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestParse(t *testing.T) {
	h4, _ := bcrypt.GenerateFromPassword([]byte("pw"), 4)
	h5, _ := bcrypt.GenerateFromPassword([]byte("pw"), 5)
	file := strings.Join([]string{
		"# users",
		"",
		"alice:" + string(h4) + ":admin, user",
		"bob:hunter2",                            // line 4: plain text
		"carol:5f4dcc3b5aa765d61d8327deb882cf99", // line 5: MD5
		"dave:" + string(h5),
		"alice:" + string(h5), // line 7: twice
	}, "\n")
	tab, errs := Parse([]byte(file))
	if tab.Len() != 2 {
		t.Fatalf("loaded %d users, want alice and dave", tab.Len())
	}
	if u, ok := tab.Lookup("alice"); !ok || strings.Join(u.Roles, ",") != "admin,user" {
		t.Fatalf("alice: %+v", u)
	}
	if _, ok := tab.Lookup("bob"); ok {
		t.Fatal("a plain-text password loaded")
	}
	if tab.MaxCost() != 5 {
		t.Fatalf("MaxCost %d, want 5", tab.MaxCost())
	}
	want := []int{4, 5, 7}
	if len(errs) != len(want) {
		t.Fatalf("errors %v, want lines %v", errs, want)
	}
	for i, e := range errs {
		if e.Line != want[i] {
			t.Errorf("error %d on line %d, want %d: %v", i, e.Line, want[i], e)
		}
	}
	for _, e := range errs[:2] {
		if !strings.Contains(e.Error(), "jwtgate hash-password") || strings.Contains(e.Error(), "hunter2") {
			t.Errorf("message must say how to fix it and never echo the password: %v", e)
		}
	}
}

// A hash whose cost would tie up a CPU for minutes is refused with its line.
func TestParseRefusesExcessiveCost(t *testing.T) {
	// A well-formed cost-31 hash, written by hand: bcrypt.Cost reads the cost
	// field without hashing anything.
	line := "mallory:$2a$31$" + strings.Repeat("a", 53) + ":admin"
	tab, errs := Parse([]byte("# users\n" + line + "\n"))
	if tab.Len() != 0 || len(errs) != 1 || errs[0].Line != 2 || !strings.Contains(errs[0].Message, "cost") {
		t.Fatalf("want line 2 refused for its cost, got %d users and %v", tab.Len(), errs)
	}
}

// Issue 12 item 1: whoever may point a policy at a Secret reads its problems
// back (status, check, logs), so a line error names the line and the kind of
// mistake, never what the line holds: not the name, not the password.
func TestLineErrorsQuoteNothing(t *testing.T) {
	const sentinel = "S3NTINEL"
	h4, _ := bcrypt.GenerateFromPassword([]byte("pw"), 4)
	lines := []string{
		"password = " + sentinel,                         // white space in the name
		sentinel + ":" + sentinel,                        // plain-text password
		"postgres" + sentinel + ":" + sentinel + "md5",   // not bcrypt
		sentinel + "x:$2a$31$" + strings.Repeat("a", 53), // cost too high
		sentinel + "dup:" + string(h4),                   // loads
		sentinel + "dup:" + string(h4),                   // listed twice
		sentinel,                                         // no colon
		":" + sentinel,                                   // no name
		sentinel + strings.Repeat("y", maxLine) + ":x",   // too long
	}
	_, errs := Parse([]byte(strings.Join(lines, "\n")))
	if len(errs) < len(lines)-1 {
		t.Fatalf("want a problem for each bad line, got %v", errs)
	}
	for _, e := range errs {
		if strings.Contains(e.Error(), sentinel) || strings.Contains(e.Error(), "postgres") {
			t.Errorf("line error quotes the file: %q", e.Error())
		}
		if !strings.HasPrefix(e.Error(), "line ") {
			t.Errorf("line error does not name its line: %q", e.Error())
		}
	}
}
