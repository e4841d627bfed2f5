package iterable_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/cartrelay/cartrelay/shared/deliver"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/iterable"
	"github.com/cartrelay/cartrelay/shared/iterable/iterablefake"
)

func profileFacts(n int, pad int) []domain.Fact {
	out := make([]domain.Fact, n)
	for i := range out {
		email := fmt.Sprintf("u%04d@example.com", i)
		c := domain.Contact{Account: "acme", Email: email, FirstName: strings.Repeat("x", pad), PurchaseCount: i,
			LTV: domain.Money{Minor: int64(i) * 150, Currency: "USD"}}
		out[i] = domain.Fact{ID: "acme:ContactChanged:" + email + ":h", Account: "acme", Kind: domain.FactContactChanged, Email: email, Contact: &c}
	}
	return out
}

func TestUpdateProfilesBulk(t *testing.T) {
	for _, tc := range []struct {
		name       string
		facts      []domain.Fact
		setup      func(e *env)
		wantBulk   int
		wantSingle int
		failed     map[string]string // fact email → error text
	}{
		{name: "a backlog of 2,500 in three calls", facts: profileFacts(2500, 0), wantBulk: 3},
		{name: "4 MB bodies split the calls", facts: profileFacts(1000, 9000), wantBulk: 3},
		{name: "refused users are retried alone", facts: profileFacts(50, 0), wantBulk: 1, wantSingle: 2,
			setup: func(e *env) {
				e.fake.Forget("u0007@example.com")
				e.fake.Forget("u0031@example.com")
			},
			failed: map[string]string{"u0007@example.com": "ForgottenUserError", "u0031@example.com": "ForgottenUserError"}},
		{name: "a call refused as too large is halved", facts: profileFacts(10, 0), wantBulk: 3,
			setup: func(e *env) {
				e.fake.Inject(iterablefake.Fault{Path: iterable.PathUsersBulkUpdate, Status: 413})
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOpts{noSpec: true, fakeLimits: map[string]iterablefake.Limit{}})
			e.acct.Set("iterable.email_list_ids", "", "iterable.sms_list_ids", "")
			if tc.setup != nil {
				tc.setup(e)
			}
			res, err := e.dest.UpdateProfiles(context.Background(), e.acct, tc.facts)
			if err != nil {
				t.Fatal(err)
			}
			if res.Bulk != tc.wantBulk || res.Single != tc.wantSingle {
				t.Fatalf("%d bulk and %d single calls, want %d and %d", res.Bulk, res.Single, tc.wantBulk, tc.wantSingle)
			}
			for _, c := range e.fake.CallsTo(iterable.PathUsersBulkUpdate) {
				if len(c.Body) > 4<<20 {
					t.Fatalf("a bulk body of %d bytes", len(c.Body))
				}
			}
			if len(res.Errors) != len(tc.failed) {
				t.Fatalf("errors %v, want %v", res.Errors, tc.failed)
			}
			for _, f := range tc.facts {
				err, failed := res.Errors[f.ID]
				want, shouldFail := tc.failed[f.Email]
				if failed != shouldFail || (failed && (!strings.Contains(err.Error(), want) || !deliver.IsPermanent(err))) {
					t.Fatalf("%s: error %v, want %q", f.Email, err, want)
				}
				if !shouldFail && e.fake.User(f.Email) == nil {
					t.Fatalf("%s was not updated", f.Email)
				}
			}
		})
	}
}
