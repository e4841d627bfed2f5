package app

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/queue"
)

// ReplayAttribute marks a message that `deliveries replay` queued again.
const ReplayAttribute = "replay"

// Replayed is one fact sent to a destination's queue again.
type Replayed struct {
	FactID      string `json:"fact_id"`
	FactKind    string `json:"fact_kind"`
	Email       string `json:"email"`
	Destination string `json:"destination"`
}

// ReplayDeliveries sends failed deliveries of an account to their destination queues again:
// every fact whose latest attempt failed and that has not been delivered since, or only the
// fact factID when it is set. The forwarder's fact-done marker makes a replay of a fact that
// did get through a no-op.
func (a *App) ReplayDeliveries(ctx context.Context, account, factID string) ([]Replayed, error) {
	repo := history.New(a.d.Store)
	failed, err := repo.Deliveries(ctx, account, true, 0)
	if err != nil {
		return nil, err
	}
	type key struct{ dest, fact string }
	seen := map[key]bool{}
	var out []Replayed
	for _, d := range failed {
		k := key{d.Dest, d.FactID}
		if seen[k] || (factID != "" && d.FactID != factID) {
			continue
		}
		seen[k] = true
		done, err := repo.FactDone(ctx, account, d.Dest, d.FactID)
		if err != nil {
			return out, err
		}
		if done != nil {
			continue
		}
		f, err := repo.Fact(ctx, account, d.Email, d.FactID)
		if err != nil {
			return out, err
		}
		body, err := json.Marshal(f)
		if err != nil {
			return out, err
		}
		// A new deduplication id: the original may still be inside the FIFO queue's window.
		dedup := "r" + strconv.FormatInt(a.d.Clock.Now().UnixNano(), 36) + "~" + f.ID
		if len(dedup) > 128 {
			dedup = dedup[:128]
		}
		msg := queue.Message{Body: string(body), GroupID: account + "|" + f.Email, DedupID: dedup,
			Attributes: map[string]string{"account": account, "fact_kind": string(f.Kind), ReplayAttribute: "true"}}
		if err := a.d.Queue.Send(ctx, d.Dest, []queue.Message{msg}); err != nil {
			return out, fmt.Errorf("replay %s to %s: %w", f.ID, d.Dest, err)
		}
		out = append(out, Replayed{FactID: f.ID, FactKind: string(f.Kind), Email: f.Email, Destination: d.Dest})
	}
	if factID != "" && len(out) == 0 {
		return nil, fmt.Errorf("no failed, undelivered fact %s in account %s ('cartrelay deliveries list %s --failed' lists them)", factID, account, account)
	}
	return out, nil
}
