package reqctx

import (
	"context"
	"testing"
)

type otherKey struct{}

func TestNewCarriesTheScopeAndTheParent(t *testing.T) {
	t.Parallel()
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), otherKey{}, "v"))
	ctx, sc := New(parent, "rid", "203.0.113.7")
	if got := From(ctx); got != sc || got.RequestID != "rid" || got.ClientIP != "203.0.113.7" {
		t.Fatalf("From = %+v, want the scope New returned", got)
	}
	sc.Claims = nil
	if ctx.Value(otherKey{}) != "v" {
		t.Error("a parent value is lost")
	}
	// A child context derived from it is cancelled with the parent.
	child, stop := context.WithCancel(ctx)
	defer stop()
	cancel()
	<-child.Done()
	if ctx.Err() == nil {
		t.Error("ctx not cancelled with its parent")
	}
	// A scope set further down wins over New's.
	inner := &Scope{RequestID: "inner"}
	if From(With(ctx, inner)) != inner {
		t.Error("With over New: the inner scope must win")
	}
}
