package iterable_test

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/iterable"
	"github.com/cartrelay/cartrelay/shared/store"
)

// listCalls counts the list calls made so far, by path and list id ("sub 111", "unsub 333").
func listCalls(e *env) []string {
	var out []string
	for _, path := range []string{iterable.PathListsSubscribe, iterable.PathListsUnsubscribe} {
		verb := "sub"
		if path == iterable.PathListsUnsubscribe {
			verb = "unsub"
		}
		for _, c := range e.fake.CallsTo(path) {
			var b struct {
				ListID int64 `json:"listId"`
			}
			if err := json.Unmarshal(c.Body, &b); err != nil {
				e.t.Fatal(err)
			}
			out = append(out, verb+" "+strconv.FormatInt(b.ListID, 10))
		}
	}
	slices.Sort(out)
	return out
}

// profileStep delivers contact_changed with the LTV moved, so it is a new fact and changes
// nothing about opt-ins, and returns the list calls it made.
func profileStep(t *testing.T, e *env, n int) []string {
	t.Helper()
	before := listCalls(e)
	f := loadFact(t, "contact_changed")
	c := *f.Contact
	c.PurchaseCount += n
	f.Contact, f.ID = &c, f.ID+strings.Repeat("+", n)
	if _, err := e.dest.Deliver(context.Background(), e.acct, f); err != nil {
		t.Fatal(err)
	}
	return newCalls(before, listCalls(e))
}

func newCalls(before, after []string) []string {
	out := slices.Clone(after)
	for _, b := range before {
		if i := slices.Index(out, b); i >= 0 {
			out = slices.Delete(out, i, i+1)
		}
	}
	return out
}

// TestListRemovedFromSettingsIsLeft: a contact cartrelay put on a list leaves it at its next
// profile update once the list is gone from the settings, and only then; lists still configured
// are not called again, and a list still named for another reason is kept.
func TestListRemovedFromSettingsIsLeft(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.acct.Set("iterable.email_list_ids", "111, 333, 555", "iterable.sms_list_ids", "222", "iterable.purchase_list_ids", "555")
	ann := "ann@example.com"
	if got := profileStep(t, e, 1); strings.Join(got, ",") != "sub 111,sub 222,sub 333,sub 555" {
		t.Fatalf("first profile: list calls %v", got)
	}
	e.acct.Set("iterable.email_list_ids", "111, 555")
	if got := profileStep(t, e, 2); strings.Join(got, ",") != "unsub 333" {
		t.Fatalf("after 333 left the email lists: list calls %v, want only 333 left", got)
	}
	if slices.Contains(e.fake.ListMembers(333), ann) || !slices.Contains(e.fake.ListMembers(111), ann) {
		t.Fatalf("members: 333 %v, 111 %v", e.fake.ListMembers(333), e.fake.ListMembers(111))
	}
	// A purchase joins 555 for the purchase too, without a call: the contact is on it already.
	f := loadFact(t, "order_placed")
	before := listCalls(e)
	if _, err := e.dest.Deliver(context.Background(), e.acct, f); err != nil {
		t.Fatal(err)
	}
	if got := newCalls(before, listCalls(e)); len(got) != 0 {
		t.Fatalf("purchase by a contact already on the purchase list: list calls %v", got)
	}
	// 555 leaves the email lists but is still the purchase list: the contact stays on it.
	e.acct.Set("iterable.email_list_ids", "111")
	if got := profileStep(t, e, 3); len(got) != 0 {
		t.Fatalf("555 is still a purchase list: list calls %v", got)
	}
	e.acct.Set("iterable.purchase_list_ids", "", "iterable.sms_list_ids", "")
	if got := profileStep(t, e, 4); strings.Join(got, ",") != "unsub 222,unsub 555" {
		t.Fatalf("after the SMS and purchase lists were removed: list calls %v", got)
	}
	if got := profileStep(t, e, 5); len(got) != 0 {
		t.Fatalf("a list is left once: list calls %v", got)
	}
}

// TestListRecordFromBeforeReasonsIsRead: a contact whose lists were recorded before the reasons
// were kept (opt-in and the lists synced) still leaves a list removed from the settings.
func TestListRecordFromBeforeReasonsIsRead(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	old := `{"email":"in","email_lists":"111,333","sms":"in","sms_lists":"222"}`
	if err := e.st.Write(ctx, store.PutItem(store.Item{PK: "A#acme#ITL#ann@example.com", SK: "LISTS", Data: []byte(old), Version: 1}, store.NotExists)); err != nil {
		t.Fatal(err)
	}
	e.acct.Set("iterable.email_list_ids", "111")
	if got := profileStep(t, e, 1); strings.Join(got, ",") != "unsub 333" {
		t.Fatalf("list calls %v, want 333 left and nothing else", got)
	}
}

// TestBehaviouralLists: a purchase joins the purchase lists and an abandoned cart the cart lists,
// once; a contact who opted out of email joins neither; a purchase list replaced in the settings
// is left at the next purchase.
func TestBehaviouralLists(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	e.acct.Set("iterable.email_list_ids", "", "iterable.sms_list_ids", "")
	deliverFact := func(name, id string) []string {
		t.Helper()
		before := listCalls(e)
		f := loadFact(t, name)
		f.ID += id
		if _, err := e.dest.Deliver(ctx, e.acct, f); err != nil {
			t.Fatal(err)
		}
		return newCalls(before, listCalls(e))
	}
	if got := deliverFact("order_placed", ""); strings.Join(got, ",") != "sub 333" {
		t.Fatalf("purchase: list calls %v", got)
	}
	if got := deliverFact("order_placed", "#2"); len(got) != 0 {
		t.Fatalf("second purchase: list calls %v", got)
	}
	if got := deliverFact("cart_abandoned", ""); strings.Join(got, ",") != "sub 444" {
		t.Fatalf("abandoned cart: list calls %v", got)
	}
	e.acct.Set("iterable.purchase_list_ids", "334")
	if got := deliverFact("order_placed", "#3"); strings.Join(got, ",") != "sub 334,unsub 333" {
		t.Fatalf("purchase after the purchase list changed: list calls %v", got)
	}

	// A contact who opted out of email is not enrolled.
	w := &history.Writes{}
	st, err := history.New(e.st).LoadContact(ctx, "acme", "zed@example.com")
	if err != nil {
		t.Fatal(err)
	}
	no := false
	w.PutProfile(st, domain.Contact{Account: "acme", Email: "zed@example.com", EmailOptIn: &no})
	if err := history.New(e.st).Commit(ctx, w); err != nil {
		t.Fatal(err)
	}
	f := loadFact(t, "order_placed")
	f.ID, f.Email = "zed-order", "zed@example.com"
	out, err := e.dest.Deliver(ctx, e.acct, f)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(e.fake.ListMembers(334), "zed@example.com") || !strings.Contains(out.Note, "opted out of email") {
		t.Fatalf("an opted-out contact was enrolled: members %v, note %q", e.fake.ListMembers(334), out.Note)
	}
}
