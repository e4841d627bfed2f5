package ultracartapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/cartrelay/cartrelay/shared/ultracartapi"
	"github.com/cartrelay/cartrelay/shared/ultracartapi/ultracartfake"
)

// TestAffiliatesQuery pages through the affiliate query, and reports UltraCart's refusal of a
// query for everyone with its message.
func TestAffiliatesQuery(t *testing.T) {
	fake := ultracartfake.New(ultracartfake.Options{SimpleKey: "k"})
	defer fake.Close()
	for _, s := range []string{"Approved", "Pending", "Rejected"} {
		fake.AddAffiliate(s)
	}
	c := ultracartapi.New(fake.URL, ultracartapi.Credentials{SimpleKey: "k"}, nil)
	ctx := context.Background()
	var oids []int
	for offset, pages := 0, 0; ; pages++ {
		p, err := c.Affiliates(ctx, 2, offset)
		if err != nil || pages > 2 {
			t.Fatalf("page at %d: %v (%d pages)", offset, err, pages)
		}
		for _, r := range p.Records {
			var a struct {
				OID int `json:"affiliate_oid"`
			}
			if err := json.Unmarshal(r, &a); err != nil {
				t.Fatal(err)
			}
			oids = append(oids, a.OID)
		}
		if !p.ResultSet.More {
			break
		}
		offset = p.ResultSet.NextOffset
	}
	if len(oids) != 3 || oids[0] != ultracartfake.AffiliateOID(0) || oids[2] != ultracartfake.AffiliateOID(2) {
		t.Fatalf("affiliates %v", oids)
	}

	strict := ultracartfake.New(ultracartfake.Options{SimpleKey: "k", AffiliateQueryNeedsFilter: true})
	defer strict.Close()
	_, err := ultracartapi.New(strict.URL, ultracartapi.Credentials{SimpleKey: "k"}, nil).Affiliates(ctx, 200, 0)
	if !errors.Is(err, ultracartapi.ErrBadRequest) || !strings.Contains(err.Error(), "specify some query parameters") {
		t.Fatalf("a refused query: %v", err)
	}
}
