package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cartrelay/cartrelay/shared/app"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/operator"
	"github.com/cartrelay/cartrelay/shared/phone"
	"github.com/cartrelay/cartrelay/shared/wiring"
)

// ingestDirect runs ingest in process over the data directory, as `serve` would.
func ingestDirect(t *testing.T, dataDir, account string, deliveries ...string) {
	t.Helper()
	ctx := context.Background()
	env, err := operator.Embedded(ctx, dataDir, wiring.Options{Phone: phone.E164})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	for i, d := range deliveries {
		var body struct{ Events []map[string]json.RawMessage }
		if err := json.Unmarshal([]byte(d), &body); err != nil {
			t.Fatal(err)
		}
		for name, payload := range body.Events[0] {
			msg, err := app.EncodeSourceEvent(ctx, env.Store, time.Now(), app.SourceEvent{Account: account, Source: domain.UltraCart,
				Name: name, Payload: payload, ReceivedAt: time.Now(), Delivery: fmt.Sprint(i)})
			if err != nil {
				t.Fatal(err)
			}
			resp, err := env.App.Ingest(ctx, events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m", Body: msg}}})
			if err != nil || len(resp.BatchItemFailures) > 0 {
				t.Fatalf("ingest: %v %+v", err, resp)
			}
		}
	}
}

func TestReportsCommands(t *testing.T) {
	data := t.TempDir()
	putAccount(t, data, "acme", testAccount)
	ingestDirect(t, data, "acme", ucOrder("R-1", "ann@example.com", "100.00", "0.00"), ucOrder("R-2", "bo@example.com", "20.50", "5.00"))

	out, code := runCLI(t, data, "reports", "revenue", "acme", "--from", "2026-11-01", "--to", "2026-11-30", "--by", "month", "--format", "csv")
	if code != 0 {
		t.Fatalf("reports revenue: %d %s", code, out)
	}
	want := "Orders and revenue (USD)\nPeriod,Orders,Gross,Refunds (cash),Net (cash),Refunds (order),Net (order),Chargebacks (cash),Chargebacks (order),AOV,New customers,New revenue,Returning orders,Returning revenue,Customers,Returning customers,Renewals,Renewal revenue\n" +
		"2026-11,2,120.50,5.00,115.50,5.00,115.50,0.00,0.00,60.25,2,120.50,0,0.00,2,0,0,0.00\ntotal,2,120.50,5.00,115.50,5.00,115.50,0.00,0.00,60.25,2,120.50,0,0.00,2,0,0,0.00\n"
	if !strings.HasPrefix(out, want) {
		t.Fatalf("csv:\n%s\nwant it to start with\n%s", out, want)
	}

	out, code = runCLI(t, data, "reports", "revenue", "acme", "--from", "2026-11-01", "--to", "2026-11-30", "--by", "month")
	if code != 0 {
		t.Fatalf("reports revenue (json): %d %s", code, out)
	}
	var r struct {
		Currencies []struct {
			Total struct {
				Gross struct{ Amount, Drill string }
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || len(r.Currencies) != 1 || r.Currencies[0].Total.Gross.Amount != "120.50" {
		t.Fatalf("json: %v\n%s", err, out)
	}
	out, code = runCLI(t, data, "reports", "drill", "acme", r.Currencies[0].Total.Gross.Drill, "--limit", "1")
	if code != 0 || !strings.Contains(out, `"order_id": "R-1"`) || !strings.Contains(out, `"next"`) {
		t.Fatalf("drill, first page: %d %s", code, out)
	}

	for _, kind := range []string{"orders", "acquisition", "attribution", "cohorts", "subscriptions", "products", "engagement"} {
		out, code := runCLI(t, data, "reports", kind, "acme", "--from", "2026-11-01", "--to", "2026-11-30", "--by", "month", "--format", "table")
		if code != 0 || !strings.Contains(out, "(USD)") && kind != "engagement" && kind != "subscriptions" {
			t.Errorf("reports %s: exit %d\n%s", kind, code, out)
		}
	}
	if out, code := runCLI(t, data, "reports", "attribution", "acme", "--from", "2026-11-01", "--to", "2026-11-30", "--model", "first", "--touch", "source"); code != 0 ||
		!strings.Contains(out, `"model": "first"`) || !strings.Contains(out, `"label": "(none)"`) {
		t.Errorf("attribution: %d %s", code, out)
	}
	if out, code := runCLI(t, data, "reports", "cohorts", "acme", "--cohort", "last-seen"); code != 2 || !strings.Contains(out, "first-order or first-seen") {
		t.Errorf("cohort view: %d %s", code, out)
	}

	if out, code = runCLI(t, data, "reports", "verify", "acme"); code != 0 || !strings.Contains(out, `"differences": []`) {
		t.Fatalf("verify: %d %s", code, out)
	}

	// A rebuild from the stored orders makes generation 2 with the same numbers; no serve runs on
	// this data, so it does not wait for ingests in flight.
	out, errOut, code := runCLIBoth(t, data, "reports", "rebuild", "acme")
	if code != 0 || !strings.Contains(out, `"generation": 2`) || !strings.Contains(out, "from 2 contacts and 2 orders") ||
		strings.Contains(errOut, "waiting") || !strings.Contains(errOut, "reading contacts") {
		t.Fatalf("rebuild: %d %s\n%s", code, out, errOut)
	}
	if out, code = runCLI(t, data, "reports", "revenue", "acme", "--from", "2026-11-01", "--to", "2026-11-30", "--by", "month", "--format", "csv"); code != 0 || !strings.HasPrefix(out, want) {
		t.Fatalf("revenue after the rebuild: %d\n%s", code, out)
	}
	if out, code = runCLI(t, data, "reports", "verify", "acme"); code != 0 || !strings.Contains(out, `"generation": 2`) || !strings.Contains(out, `"differences": []`) {
		t.Fatalf("verify after the rebuild: %d %s", code, out)
	}
	if out, code := runCLI(t, data, "reports", "rebuild", "nobody"); code != 1 || !strings.Contains(out, `no account "nobody"`) {
		t.Errorf("rebuild of an unknown account: %d %s", code, out)
	}

	for _, bad := range [][]string{
		{"reports", "weather", "acme"},
		{"reports", "revenue", "acme", "--by", "fortnight"},
		{"reports", "revenue", "acme", "--from", "2026-12-01", "--to", "2026-11-01"},
		{"reports", "revenue", "acme", "--format", "xml"},
		{"reports", "drill", "acme", "not-a-handle"},
	} {
		if out, code := runCLI(t, data, bad...); code != 2 {
			t.Errorf("%v: exit %d, want 2 (usage): %s", bad, code, out)
		}
	}
	if out, code := runCLI(t, data, "reports", "revenue", "nobody"); code != 1 || !strings.Contains(out, `account "nobody" does not exist`) {
		t.Errorf("unknown account: %d %s", code, out)
	}
}
