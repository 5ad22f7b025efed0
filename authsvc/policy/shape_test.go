package policy

import (
	"testing"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
)

// A spec with a problem never borrows the shape of a valid twin whose key it
// shares ("in: []" and no "in" marshal alike): it is refused, whichever
// compiled first.
func TestAShapeIsSharedOnlyWithValidSpecs(t *testing.T) {
	k := newTestKeys(t)
	compile := func(in []string) error {
		ap, secrets := shopPolicy(k)
		ap.Spec.Rules = append(ap.Spec.Rules, v1alpha1.Rule{Path: "/twin", Claims: []v1alpha1.ClaimRequirement{{Name: "scope", Contains: ptr("x"), In: in}}})
		_, err := Compile(Input{Policy: ap, Secrets: secrets})
		return err
	}
	if err := compile(nil); err != nil {
		t.Fatal(err)
	}
	if err := compile([]string{}); err == nil {
		t.Fatal(`"in: []" beside "contains" compiled: it borrowed the shape of its valid twin`)
	}
}
