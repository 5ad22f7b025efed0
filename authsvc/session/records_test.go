package session

import (
	"testing"
	"time"
)

func TestMemoryRecordsBounds(t *testing.T) {
	c := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	m := &MemoryRecords{EventsPerUser: 3, MaxUsers: 2, RecordTTL: time.Hour, Now: c.Now}
	for i := range 5 {
		if err := m.Record(ctx, Event{Kind: EventIssued, Policy: "p/p", User: "alice", Session: string(rune('a' + i))}); err != nil {
			t.Fatal(err)
		}
	}
	rec, _ := m.UserRecord(ctx, "p/p", "alice")
	if len(rec.Events) != 3 || rec.Events[0].Session != "e" {
		t.Fatalf("events kept: %+v", rec.Events)
	}
	if u, _ := m.SessionUser(ctx, "p/p", "e"); u != "alice" {
		t.Fatalf("SessionUser = %q", u)
	}
	c.Advance(time.Second)
	if err := m.Record(ctx, Event{Kind: EventIssued, Policy: "p/p", User: "bob", Session: "x"}); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Second)
	if err := m.Record(ctx, Event{Kind: EventIssued, Policy: "p/p", User: "carol", Session: "y"}); err != nil {
		t.Fatal(err)
	}
	if rec, _ := m.UserRecord(ctx, "p/p", "alice"); len(rec.Events) != 0 {
		t.Fatal("the least recently recorded user was not forgotten past MaxUsers")
	}
	if u, _ := m.SessionUser(ctx, "p/p", "e"); u != "" {
		t.Fatal("a forgotten user's sessions are still indexed")
	}
	c.Advance(2 * time.Hour)
	if rec, _ := m.UserRecord(ctx, "p/p", "carol"); len(rec.Events) != 0 {
		t.Fatal("events older than RecordTTL are still answered")
	}
}
