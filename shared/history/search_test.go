package history_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/store"
	"github.com/cartrelay/cartrelay/shared/testenv"
)

func TestSearchEmbedded(t *testing.T) {
	searchScenario(t, testenv.EmbeddedStore(t, clock.NewFake(time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC))))
}

// putProfile writes a contact's profile as ingest does: read, change, commit under its version.
func putProfile(t *testing.T, repo *history.Repo, account, email, first, last string) {
	t.Helper()
	ctx := context.Background()
	st, err := repo.LoadContact(ctx, account, email)
	if err != nil {
		t.Fatal(err)
	}
	p := st.Profile
	p.FirstName, p.LastName = first, last
	w := &history.Writes{}
	w.PutProfile(st, p)
	if err := repo.Commit(ctx, w); err != nil {
		t.Fatal(err)
	}
}

func emails(hits []history.ContactHit) []string {
	var out []string
	for _, h := range hits {
		out = append(out, h.Email)
	}
	return out
}

// searchScenario runs the contact search on a store: by email prefix and by name, a page at a
// time, following changes of name, an emptied contact and a profile stored before the indexes.
func searchScenario(t *testing.T, s store.Store) {
	ctx := context.Background()
	repo := history.New(s)
	const acct = "acme"
	putProfile(t, repo, acct, "jane.doe@example.com", "Jane", "Doe")
	putProfile(t, repo, acct, "jane.smith@example.com", "Jane", "Smith")
	putProfile(t, repo, acct, "john@example.com", "John", "Doe")
	putProfile(t, repo, acct, "emile@example.fr", "Émile", "Zola")
	putProfile(t, repo, acct, "nameless@example.com", "", "")
	putProfile(t, repo, "other", "jane.other@example.com", "Jane", "Other")

	t.Run("email exact and prefix", func(t *testing.T) {
		page, err := repo.SearchEmail(ctx, acct, "Jane.Doe@example.com", "", 10)
		if err != nil || !slices.Equal(emails(page.Hits), []string{"jane.doe@example.com"}) || page.Next != "" {
			t.Fatalf("exact = %v next %q %v", emails(page.Hits), page.Next, err)
		}
		if page.Hits[0].Profile == nil || page.Hits[0].Profile.FirstName != "Jane" {
			t.Errorf("hit carries profile %+v, want Jane's", page.Hits[0].Profile)
		}
		page, err = repo.SearchEmail(ctx, acct, "j", "", 10)
		if err != nil || !slices.Equal(emails(page.Hits), []string{"jane.doe@example.com", "jane.smith@example.com", "john@example.com"}) {
			t.Fatalf("prefix j = %v %v (the other account's Jane must not appear)", emails(page.Hits), err)
		}
	})
	t.Run("pages by cursor", func(t *testing.T) {
		var got []string
		cursor := ""
		for range 5 {
			page, err := repo.SearchEmail(ctx, acct, "j", cursor, 1)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, emails(page.Hits)...)
			if cursor = page.Next; cursor == "" {
				break
			}
		}
		if !slices.Equal(got, []string{"jane.doe@example.com", "jane.smith@example.com", "john@example.com"}) {
			t.Fatalf("paged = %v", got)
		}
		if _, err := repo.SearchEmail(ctx, acct, "j", "%%%", 1); err == nil {
			t.Error("a cursor that is not one was accepted")
		}
	})
	t.Run("name full and last", func(t *testing.T) {
		page, err := repo.SearchName(ctx, acct, "doe", "", 10)
		if err != nil || !slices.Equal(emails(page.Hits), []string{"jane.doe@example.com", "john@example.com"}) {
			t.Fatalf("doe = %v %v", emails(page.Hits), err)
		}
		page, err = repo.SearchName(ctx, acct, "  JANE  ", "", 10)
		if err != nil || !slices.Equal(emails(page.Hits), []string{"jane.doe@example.com", "jane.smith@example.com"}) {
			t.Fatalf("jane = %v %v", emails(page.Hits), err)
		}
		page, err = repo.SearchName(ctx, acct, "émile", "", 10)
		if err != nil || !slices.Equal(emails(page.Hits), []string{"emile@example.fr"}) {
			t.Fatalf("émile = %v %v", emails(page.Hits), err)
		}
		if _, err := repo.SearchName(ctx, acct, "  ", "", 10); err == nil {
			t.Error("an empty name was searched")
		}
	})
	t.Run("a change of name moves the entries", func(t *testing.T) {
		putProfile(t, repo, acct, "jane.smith@example.com", "Jane", "Brown")
		page, _ := repo.SearchName(ctx, acct, "smith", "", 10)
		if len(page.Hits) != 0 {
			t.Errorf("old name still found: %v", emails(page.Hits))
		}
		page, _ = repo.SearchName(ctx, acct, "brown", "", 10)
		if !slices.Equal(emails(page.Hits), []string{"jane.smith@example.com"}) {
			t.Errorf("new name = %v", emails(page.Hits))
		}
	})
	t.Run("reindex is harmless and idempotent", func(t *testing.T) {
		if _, err := repo.ReindexAll(ctx, acct, nil); err != nil {
			t.Fatal(err)
		}
		page, _ := repo.SearchName(ctx, acct, "doe", "", 10)
		if !slices.Equal(emails(page.Hits), []string{"jane.doe@example.com", "john@example.com"}) {
			t.Errorf("after reindex doe = %v", emails(page.Hits))
		}
	})
}
