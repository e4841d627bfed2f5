package destinations_test

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/destinations"
	"github.com/cartrelay/cartrelay/shared/iterable"
	"github.com/cartrelay/cartrelay/shared/ontraport"
	"github.com/cartrelay/cartrelay/shared/secrets"
	"github.com/cartrelay/cartrelay/shared/signedhooks"
	"github.com/cartrelay/cartrelay/shared/store"
	"github.com/cartrelay/cartrelay/shared/testenv"
)

// The ONTRAPORT key in testdata/account-before-sections.json was sealed by an earlier release
// (format v1) for account acme under the local master key of 32 bytes of 7.
const (
	storedOntraportKey = "op-key-of-2025"
	storedIterableKey  = "it-key-of-2025"
)

// TestAccountsStoredEarlierStillWork: an account the release before the destinations' sections
// stored (testdata/account-before-sections.json, the item as it wrote it, with an ONTRAPORT key
// sealed in an older format still) reads with every ONTRAPORT and Iterable setting where it
// was, opens its keys, reseals, and takes a put that keeps the document's shape, on SQLite and
// on DynamoDB Local. Nothing is migrated: the sections keep the paths.
func TestAccountsStoredEarlierStillWork(t *testing.T) {
	for _, backend := range []struct {
		name string
		open func(t *testing.T, clk clock.Clock) store.Store
	}{
		{"sqlite", func(t *testing.T, clk clock.Clock) store.Store { return testenv.EmbeddedStore(t, clk) }},
		{"dynamodb", func(t *testing.T, clk clock.Clock) store.Store {
			return testenv.DynamoDBTables(t, "stored-accounts")(t, clk)
		}},
	} {
		t.Run(backend.name, func(t *testing.T) {
			ctx := context.Background()
			clk := clock.NewFake(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
			st := backend.open(t, clk)
			key, err := secrets.NewLocalKey(bytes.Repeat([]byte{7}, 32))
			if err != nil {
				t.Fatal(err)
			}
			sealer := secrets.NewSealer(key, clk)
			repo := accounts.NewRepo(st, sealer, clk).WithCheck(destinations.Check).WithSections(destinations.Sections()...)
			old := storeOldAccount(t, st, sealer)

			a, err := repo.Get(ctx, "acme", ontraport.APIKey, iterable.APIKey)
			if err != nil {
				t.Fatalf("read the stored account: %v", err)
			}
			checkStoredSettings(t, a)

			done, err := repo.Reseal(ctx, "acme")
			if err != nil || !slices.Equal(done, []string{string(ontraport.APIKey)}) {
				t.Fatalf("reseal: %v, %v; want the ONTRAPORT key sealed in the older format", done, err)
			}
			if _, err := repo.Put(ctx, "acme", []byte(`{"iterable": {"sms_list_ids": "9"}, "ontraport": {"tags": {"delivered": "Delivered"}}}`)); err != nil {
				t.Fatalf("put over the stored account: %v", err)
			}
			a, err = repo.Get(ctx, "acme", ontraport.APIKey, iterable.APIKey)
			if err != nil {
				t.Fatal(err)
			}
			checkStoredSettings(t, a)
			if a.Text("iterable.sms_list_ids") != "9" || a.Text("ontraport.tags.delivered") != "Delivered" {
				t.Errorf("the put's own values: %q, %q", a.Text("iterable.sms_list_ids"), a.Text("ontraport.tags.delivered"))
			}

			// The document keeps the shape it had: every key where it was, the two new ones beside.
			now := rawDoc(t, st)
			for _, group := range []string{"ontraport", "iterable", "webhooks"} {
				before, after := maps.Clone(old[group].(map[string]any)), maps.Clone(now[group].(map[string]any))
				delete(before, "api_key")
				delete(after, "api_key")
				delete(after, "sms_list_ids")
				if tags, ok := after["tags"].(map[string]any); ok {
					tags = maps.Clone(tags)
					delete(tags, "delivered")
					after["tags"] = tags
				}
				if !reflect.DeepEqual(before, after) {
					t.Errorf("stored %s changed shape:\nbefore %v\nafter  %v", group, before, after)
				}
			}
			if k, _ := now["ontraport"].(map[string]any)["api_key"].(string); k == "" || !secrets.Current(k) {
				t.Errorf("the ONTRAPORT key is stored as %.3s…, want sealed in the current format", k)
			}
		})
	}
}

// storeOldAccount writes the fixture as the earlier release stored account acme, with its
// Iterable key sealed, and returns the document.
func storeOldAccount(t *testing.T, st store.Store, sealer *secrets.Sealer) map[string]any {
	t.Helper()
	ctx := context.Background()
	raw, err := os.ReadFile(filepath.Join("testdata", "account-before-sections.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	sealed, err := sealer.Seal(ctx, []byte(storedIterableKey), secrets.Purpose{Account: "acme", Secret: string(iterable.APIKey)})
	if err != nil {
		t.Fatal(err)
	}
	doc["iterable"].(map[string]any)["api_key"] = sealed
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	k := accounts.Key("acme")
	it := store.Item{PK: k.PK, SK: k.SK, GSI1PK: "ACCOUNTS", GSI1SK: "acme", Version: 4, Data: data}
	if err := st.Write(ctx, store.PutItem(it, store.NotExists)); err != nil {
		t.Fatal(err)
	}
	return doc
}

func rawDoc(t *testing.T, st store.Store) map[string]any {
	t.Helper()
	k := accounts.Key("acme")
	it, err := st.Get(context.Background(), k.PK, k.SK)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(it.Data, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// checkStoredSettings: every setting of the fixture reaches its destination.
func checkStoredSettings(t *testing.T, a accounts.Account) {
	t.Helper()
	var names []string
	for _, r := range destinations.Enabled(a) {
		names = append(names, r.Name)
	}
	if !slices.Equal(names, []string{ontraport.Name, iterable.Name, signedhooks.Name}) {
		t.Errorf("enabled destinations %v", names)
	}
	for name, want := range map[string]accounts.HistoryMode{ontraport.Name: accounts.HistoryAll, iterable.Name: accounts.HistoryNone, signedhooks.Name: accounts.HistoryProfiles} {
		r, err := destinations.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.History(a); got != want || !r.Enabled(a) {
			t.Errorf("%s: history %q, enabled %v; want %q and enabled", name, got, r.Enabled(a), want)
		}
		if err := r.Check(a); err != nil {
			t.Errorf("%s refuses the stored settings: %v", name, err)
		}
	}
	if a.SecretAt(string(ontraport.APIKey)).Reveal() != storedOntraportKey || a.SecretAt(string(iterable.APIKey)).Reveal() != storedIterableKey {
		t.Error("the stored keys did not open to their values")
	}
	for path, want := range map[string]string{
		"ontraport.app_id": "2_1_x", "ontraport.base_url": "https://op-proxy.example.com/1", "ontraport.requests_per_minute": "120",
		"ontraport.invoice_template": "4", "ontraport.subscription_status.paused": "on hold", "ontraport.tags.shipped": "Shipped",
		"ontraport.tags.affiliate": "-", "ontraport.fields.ltv": "f1571",
	} {
		if got := a.Text(path); got != want {
			t.Errorf("%s = %q, want %q", path, got, want)
		}
	}
	if !a.Flag("ontraport.send_invoice") || !a.Flag("ontraport.disable_affiliates") || a.Flag("ontraport.disable_orders") {
		t.Error("ONTRAPORT's toggles did not read as stored")
	}
	if ontraport.Erasure(a) != ontraport.ErasureDelete {
		t.Errorf("erasure %q, want delete", ontraport.Erasure(a))
	}
	s, err := iterable.ParseSettings(a)
	if err != nil {
		t.Fatal(err)
	}
	if s.BaseURL != iterable.EUBaseURL || !slices.Equal(s.EmailLists, []int64{111, 222}) || s.ReviewWait != 48*time.Hour ||
		s.ReturnCartEvents || !s.RegularEvents || s.ReviewURLTemplate != "https://shop.example.com/reviews/new?sku={sku}" {
		t.Errorf("Iterable settings %+v", s)
	}
}
