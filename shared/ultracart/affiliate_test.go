package ultracart

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
)

func TestNormalizeAffiliate(t *testing.T) {
	at := time.Date(2026, 11, 20, 12, 0, 0, 0, time.FixedZone("EST", -5*3600))
	cases := []struct {
		name   string
		rec    string
		status domain.AffiliateStatus
		field  string // the field an error names; "" when accepted
	}{
		{"approved", `{"affiliate_oid":300001,"email":" Ann@Example.com ","first_name":"Ann","last_name":"Lee","status":"Approved"}`, domain.AffiliateApproved, ""},
		{"pending", `{"affiliate_oid":300002,"email":"bo@example.com","status":"pending"}`, domain.AffiliatePending, ""},
		{"rejected", `{"affiliate_oid":300003,"email":"cy@example.com","status":"Rejected"}`, domain.AffiliateRejected, ""},
		{"terminated for spam while approved", `{"affiliate_oid":300004,"email":"di@example.com","status":"Approved","terminated_for_spam":true}`, domain.AffiliateRejected, ""},
		{"a status cartrelay does not know", `{"affiliate_oid":300005,"email":"ed@example.com","status":"On hold"}`, "", "status"},
		{"no status", `{"affiliate_oid":300006,"email":"fi@example.com"}`, "", "status"},
		{"no address", `{"affiliate_oid":300007,"status":"Approved"}`, "", "email"},
		{"no id", `{"email":"gu@example.com","status":"Approved"}`, "", "affiliate_oid"},
		{"id as text", `{"affiliate_oid":"300008","email":"ha@example.com","status":"Approved"}`, domain.AffiliateApproved, ""},
		{"not an object", `[]`, "", "not an UltraCart Affiliate"},
	}
	for _, c := range cases {
		evs, err := NormalizeAffiliate([]byte(c.rec), at)
		if c.status == "" {
			var ee *EventError
			if !errors.As(err, &ee) || !errors.Is(err, ErrInvalidEvent) || !strings.Contains(err.Error(), c.field) {
				t.Errorf("%s: err %v, want an invalid event naming %q", c.name, err, c.field)
			}
			continue
		}
		if err != nil || len(evs) != 1 {
			t.Fatalf("%s: %v %v", c.name, evs, err)
		}
		e := evs[0]
		a := e.AffiliateSignup
		if e.Kind != domain.KindAffiliate || e.Source != domain.UltraCart || e.Name != EventAffiliate || a == nil ||
			a.Status != c.status || a.Source != domain.UltraCart || !a.At.Equal(at) || a.At.Location() != time.UTC {
			t.Errorf("%s: %+v %+v", c.name, e, a)
		}
	}
	evs, _ := NormalizeAffiliate([]byte(cases[0].rec), at)
	if a := evs[0].AffiliateSignup; a.AffiliateID != "300001" || a.Email != "ann@example.com" || a.FirstName != "Ann" || a.LastName != "Lee" {
		t.Errorf("affiliate %+v", a)
	}
}

// FuzzNormalizeAffiliate: any record is an affiliate event with an id, an address and a known
// status, or an invalid event with a reason.
func FuzzNormalizeAffiliate(f *testing.F) {
	f.Add(`{"affiliate_oid":300001,"email":"ann@example.com","first_name":"Ann","status":"Approved"}`)
	f.Add(`{"affiliate_oid":1e3,"email":"a@b.co","status":"pending","terminated_for_spam":true}`)
	f.Add(`{"affiliate_oid":-1,"email":"x","status":"?"}`)
	f.Fuzz(func(t *testing.T, rec string) {
		evs, err := NormalizeAffiliate([]byte(rec), time.Unix(1700000000, 0))
		if err != nil {
			if !errors.Is(err, ErrInvalidEvent) {
				t.Fatalf("error %v is not an invalid event", err)
			}
			return
		}
		a := evs[0].AffiliateSignup
		if len(evs) != 1 || a == nil || a.AffiliateID == "" || a.Email == "" || a.AffiliateID[0] == '-' || a.AffiliateID[0] == '0' {
			t.Fatalf("accepted %+v", evs)
		}
		switch a.Status {
		case domain.AffiliateApproved, domain.AffiliatePending, domain.AffiliateRejected:
		default:
			t.Fatalf("status %q", a.Status)
		}
	})
}
