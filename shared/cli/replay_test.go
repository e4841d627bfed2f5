package cli_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/app"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/iterable"
)

// deliveries replay prints every delivery's outcome, goes on past one it cannot replay, and
// then exits 1 with a summary.
func TestDeliveriesReplayReportsEachOutcome(t *testing.T) {
	data := t.TempDir()
	putAccount(t, data, "acme", `{"iterable":{"enabled":true}}`)
	env := openData(t, data)
	ctx := context.Background()
	repo := history.New(env.Store)
	at := time.Now().UTC()
	// A parked follow-up with its copy kept, and an older-style one without.
	kept := domain.Fact{ID: "acme:IterableReviewRequest:kept", Account: "acme", Kind: "IterableReviewRequest", Email: "ann@example.com", OccurredAt: at}
	body, _ := json.Marshal(kept)
	if err := repo.KeepFailedFact(ctx, "acme", kept.Email, iterable.Registration().Name, kept.ID, history.FailedFact{Attempts: 1, Failures: 1, FirstFailedAt: at, Fact: body}, at.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for i, id := range []string{kept.ID, "acme:IterableCartReminder:lost"} {
		d := history.Delivery{Account: "acme", Email: "ann@example.com", Dest: iterable.Registration().Name, FactID: id, FactKind: strings.Split(id, ":")[1],
			At: at.Add(time.Duration(i) * time.Second), Attempt: 1, Status: history.DeliveryParked, Error: "400 Bad Request"}
		if err := repo.RecordDelivery(ctx, d, app.DeliveryLogTTL); err != nil {
			t.Fatal(err)
		}
	}

	out, code := runCLI(t, data, "deliveries", "replay", "acme")
	if code != 1 {
		t.Fatalf("exit %d, want 1 when a delivery could not be replayed:\n%s", code, out)
	}
	for _, want := range []string{
		`"fact_id":"acme:IterableCartReminder:lost"`, `"error":"the fact is neither in a copy kept`,
		`"fact_id":"acme:IterableReviewRequest:kept"`,
		`"replayed": 1`, `"failed": 1`,
		"cartrelay: 1 of 2 failed deliveries of acme could not be replayed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}
	if st, err := env.Queue.Stats(ctx, iterable.Registration().Queue.Name); err != nil || st.Visible != 1 {
		t.Fatalf("iterable queue %+v, %v; want the kept review request queued again", st, err)
	}
}
