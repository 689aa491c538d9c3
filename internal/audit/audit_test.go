package audit_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

type failingSink struct{}

func (failingSink) InsertEvent(context.Context, *store.Event) error { return errors.New("db down") }

// TestPublish: every recorded event reaches the monitor's hook with its id
// and time filled in — even when the store fails, since detection must not
// depend on the database.
func TestPublish(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var got []store.Event
	r := audit.New(audit.Options{Sink: failingSink{}, Now: func() time.Time { return now }, Publish: func(e store.Event) { got = append(got, e) }})
	r.Record(context.Background(), store.Event{Type: audit.LoginFailed, IP: "192.0.2.1"})
	if len(got) != 1 || got[0].ID == "" || !got[0].Time.Equal(now) || got[0].Type != audit.LoginFailed || r.SinkErrors() != 1 {
		t.Fatalf("published %+v, sink errors %d", got, r.SinkErrors())
	}
	var nilRec *audit.Recorder
	nilRec.Record(context.Background(), store.Event{Type: audit.LoginFailed}) // a nil Recorder records nothing, without panicking
}
