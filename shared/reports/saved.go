package reports

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cartrelay/cartrelay/shared/store"
)

// Saved reports: a merchant names a report with its options and finds it again on the console's
// reports dashboard. They live in one partition per account, pk "A#<acct>#SAVED", sort key the
// name, so a name is saved once per account (saving it again replaces it) and the dashboard
// lists them in name order with one query.

// Saved is a report kept under a name.
type Saved struct {
	Name    string    `json:"name"`
	Params  Params    `json:"params"`
	SavedAt time.Time `json:"saved_at"`
}

// MaxSaved is how many reports an account may keep, so its dashboard stays one page.
const MaxSaved = 50

// maxNameLen bounds a name, in characters.
const maxNameLen = 80

func savedPK(account string) string { return "A#" + account + "#SAVED" }

// CleanName is a report name as it is kept: trimmed, with runs of white space made one space.
// An empty, over-long or unprintable name is a *ParamError.
func CleanName(name string) (string, error) {
	name = strings.Join(strings.Fields(name), " ")
	switch {
	case name == "":
		return "", &ParamError{"name", "give the report a name"}
	case utf8.RuneCountInString(name) > maxNameLen:
		return "", &ParamError{"name", fmt.Sprintf("a report name has at most %d characters", maxNameLen)}
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return "", &ParamError{"name", "a report name cannot hold control characters"}
		}
	}
	return name, nil
}

// Save keeps p under name for account, replacing a report saved under that name, in one
// transaction with with (the action's audit record).
func (e *Engine) Save(ctx context.Context, account, name string, p Params, now time.Time, with ...store.Write) (Saved, error) {
	name, err := CleanName(name)
	if err != nil {
		return Saved{}, err
	}
	if _, err := e.Resolve(ctx, account, p); err != nil {
		return Saved{}, err
	}
	list, err := e.SavedReports(ctx, account)
	if err != nil {
		return Saved{}, err
	}
	replacing := false
	for _, s := range list {
		replacing = replacing || s.Name == name
	}
	if !replacing && len(list) >= MaxSaved {
		return Saved{}, &ParamError{"name", fmt.Sprintf("an account keeps at most %d saved reports; delete one first", MaxSaved)}
	}
	s := Saved{Name: name, Params: p, SavedAt: now.UTC()}
	data, err := json.Marshal(s)
	if err != nil {
		return Saved{}, err
	}
	ws := append([]store.Write{store.PutItem(store.Item{PK: savedPK(account), SK: name, Data: data}, store.Always)}, with...)
	if err := e.Store.Transact(ctx, ws); err != nil {
		return Saved{}, fmt.Errorf("save report %q of %s: %w", name, account, err)
	}
	return s, nil
}

// SavedReports lists account's saved reports in name order.
func (e *Engine) SavedReports(ctx context.Context, account string) ([]Saved, error) {
	var out []Saved
	q := store.Query{PK: savedPK(account), Limit: MaxSaved + 10}
	for {
		page, err := e.Store.Query(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("saved reports of %s: %w", account, err)
		}
		for _, it := range page.Items {
			var s Saved
			if err := json.Unmarshal(it.Data, &s); err != nil {
				return nil, fmt.Errorf("saved report %q of %s is unreadable: %w", it.SK, account, err)
			}
			out = append(out, s)
		}
		if page.Next == "" {
			return out, nil
		}
		q.Cursor = page.Next
	}
}

// SavedReport reads one saved report; store.ErrNotFound when account has none of that name.
func (e *Engine) SavedReport(ctx context.Context, account, name string) (Saved, error) {
	it, err := e.Store.Get(ctx, savedPK(account), name)
	if err != nil {
		return Saved{}, err
	}
	var s Saved
	if err := json.Unmarshal(it.Data, &s); err != nil {
		return Saved{}, fmt.Errorf("saved report %q of %s is unreadable: %w", name, account, err)
	}
	return s, nil
}

// DeleteSaved removes a saved report, in one transaction with with; store.ErrNotFound when
// there is none of that name.
func (e *Engine) DeleteSaved(ctx context.Context, account, name string, with ...store.Write) error {
	if _, err := e.SavedReport(ctx, account, name); err != nil {
		return err
	}
	ws := append([]store.Write{store.DeleteKey(store.Key{PK: savedPK(account), SK: name}, store.Always)}, with...)
	if err := e.Store.Transact(ctx, ws); err != nil {
		return fmt.Errorf("delete saved report %q of %s: %w", name, account, err)
	}
	return nil
}
