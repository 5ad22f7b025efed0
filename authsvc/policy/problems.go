package policy

import (
	"fmt"
	"strings"
)

// Problem is one thing wrong with a policy: the field it is in, a reason (one of the
// Reason constants of api/v1alpha1, for status conditions) and a message that says
// what is wrong and how to fix it.
type Problem struct {
	Field   string
	Reason  string
	Message string
}

func (p Problem) Error() string {
	if p.Field == "" {
		return p.Message
	}
	return p.Field + ": " + p.Message
}

// CompileError lists every problem found while compiling one policy.
type CompileError struct {
	Policy   string // namespace/name
	Problems []Problem
}

func (e *CompileError) Error() string {
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		msgs[i] = p.Error()
	}
	return fmt.Sprintf("AuthPolicy %s: %s", e.Policy, strings.Join(msgs, "; "))
}

// Reason is the reason of the first problem, for a status condition.
func (e *CompileError) Reason() string {
	if len(e.Problems) == 0 {
		return ""
	}
	return e.Problems[0].Reason
}

type problems []Problem

func (ps *problems) add(field, reason, format string, args ...any) {
	*ps = append(*ps, Problem{Field: field, Reason: reason, Message: fmt.Sprintf(format, args...)})
}
