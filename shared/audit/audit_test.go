package audit_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/audit"
	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/testenv"
)

func TestListPagesNewestFirst(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	st := testenv.EmbeddedStore(t, clock.NewFake(t0))
	// Two entries at the same instant must both be kept and both be listed.
	times := []time.Duration{0, time.Minute, time.Minute, 2 * time.Minute, 3 * time.Minute}
	for i, d := range times {
		e := audit.Entry{Account: "acme", At: t0.Add(d), Actor: "cli", Action: audit.ReplayDelivery, Target: string(rune('a' + i))}
		if err := audit.Record(ctx, st, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := audit.Record(ctx, st, audit.Entry{Account: "other", At: t0.Add(time.Hour), Action: audit.ChangeSettings}); err != nil {
		t.Fatal(err)
	}
	var got []string
	cursor := ""
	pages := 0
	for {
		p, err := audit.List(ctx, st, "acme", cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, e := range p.Entries {
			if e.Account != "acme" || e.Outcome != audit.Done || e.ID == "" {
				t.Errorf("entry %+v", e)
			}
			got = append(got, e.Target)
		}
		if p.Next == "" {
			break
		}
		cursor = p.Next
	}
	if len(got) != 5 || got[0] != "e" || got[1] != "d" || got[4] != "a" {
		t.Errorf("targets newest first: %v", got)
	}
	if pages != 3 {
		t.Errorf("%d pages of 2 for 5 entries, want 3 (the last one not empty)", pages)
	}
	if _, err := audit.List(ctx, st, "acme", "%%%", 2); !errors.Is(err, audit.ErrBadCursor) {
		t.Errorf("bad cursor: %v", err)
	}
}

func TestDiscardKeepsWhatWasDiscarded(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	st := testenv.EmbeddedStore(t, clock.NewFake(t0))
	raw := json.RawMessage(`{"message":"the raw event"}`)
	if err := audit.Record(ctx, st, audit.Entry{Account: "acme", At: t0, Action: audit.DiscardQuarantine, Kept: raw}); err != nil {
		t.Fatal(err)
	}
	p, err := audit.List(ctx, st, "acme", "", 10)
	if err != nil || len(p.Entries) != 1 {
		t.Fatalf("%v %v", p, err)
	}
	if string(p.Entries[0].Kept) != string(raw) {
		t.Errorf("kept %s, want %s", p.Entries[0].Kept, raw)
	}
	if _, err := audit.Put(audit.Entry{Account: "acme"}); err == nil {
		t.Error("an entry without an action was accepted")
	}
}
