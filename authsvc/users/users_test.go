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
