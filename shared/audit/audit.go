// Package audit keeps an account's audit log: who did what to it, and when, for every action
// that changes state from the console or the operator CLI (a replay, a discard, a settings
// change). A discard keeps what was discarded in its entry, so nothing a merchant throws away
// is lost to the record.
//
// Entries live in one partition per account, pk "A#<acct>#AUDIT", with a sort key of the
// entry's time (fixed width, so keys sort in time order) and a random suffix, and never expire.
package audit

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cartrelay/cartrelay/shared/store"
)

// Actions recorded.
const (
	ReplayDelivery    = "replay_delivery"
	ReplayDeliveries  = "replay_deliveries"
	ReplayQuarantined = "replay_quarantined"
	DiscardQuarantine = "discard_quarantined"
	ReplayDeadLetter  = "replay_dead_letter"
	DiscardDeadLetter = "discard_dead_letter"
	ChangeSettings    = "change_settings"
	SaveReport        = "save_report"
	DeleteReport      = "delete_report"
	// EraseContact is a contact's erasure (shared/erasure): its Target is the pseudonym the
	// contact's orders are kept under, never an address.
	EraseContact = "erase_contact"
)

// Entry is one action.
type Entry struct {
	Account string    `json:"account"`
	At      time.Time `json:"at"`
	// Actor says who acted: the console session (how it was signed in, its short id and the
	// client's address) or the operator's CLI.
	Actor string `json:"actor"`
	// Action is one of the constants above.
	Action string `json:"action"`
	// Target names what was acted on (a fact id and destination, a quarantined event's id, a
	// dead letter's queue and message id).
	Target string `json:"target"`
	// Summary is a sentence a merchant reads: what happened.
	Summary string `json:"summary"`
	// Outcome is "done", or what went wrong.
	Outcome string `json:"outcome"`
	// Kept is what a discard removed (the raw event or message), so it can still be read.
	Kept json.RawMessage `json:"kept,omitempty"`
	// ID is the entry's sort key, set when it is read back.
	ID string `json:"id,omitempty"`
}

// Done is the Outcome of an action that went through.
const Done = "done"

// PK is the partition of an account's audit log.
func PK(account string) string { return "A#" + account + "#AUDIT" }

// sortableTime sorts in time order as a string, unlike RFC 3339 with trimmed fractions.
const sortableTime = "2006-01-02T15:04:05.000000000Z"

// Put is the write that records e; it goes in the same transaction as the action it records
// when the action is a table write (a discard), so one never happens without the other.
func Put(e Entry) (store.Write, error) {
	if e.Account == "" || e.Action == "" {
		return store.Write{}, errors.New("audit: an entry needs an account and an action")
	}
	if e.Outcome == "" {
		e.Outcome = Done
	}
	var suffix [6]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return store.Write{}, fmt.Errorf("audit: entry id: %w", err)
	}
	e.ID = ""
	data, err := json.Marshal(e)
	if err != nil {
		return store.Write{}, fmt.Errorf("audit: encode entry: %w", err)
	}
	sk := e.At.UTC().Format(sortableTime) + "#" + hex.EncodeToString(suffix[:])
	return store.PutItem(store.Item{PK: PK(e.Account), SK: sk, Data: data}, store.NotExists), nil
}

// Record writes e on its own.
func Record(ctx context.Context, st store.Store, e Entry) error {
	w, err := Put(e)
	if err != nil {
		return err
	}
	if err := st.Write(ctx, w); err != nil {
		return fmt.Errorf("record %s in the audit log of %s: %w", e.Action, e.Account, err)
	}
	return nil
}

// Page is a page of entries, newest first.
type Page struct {
	Entries []Entry
	// Next continues the list ("" on the last page).
	Next string
}

// List reads up to limit entries of account, newest first, from cursor ("" for the newest).
func List(ctx context.Context, st store.Store, account, cursor string, limit int) (Page, error) {
	if limit <= 0 {
		limit = 20
	}
	// One more than asked says whether there is a next page.
	q := store.Query{PK: PK(account), Descending: true, Limit: limit + 1}
	if cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(cursor)
		if err != nil {
			return Page{}, ErrBadCursor
		}
		// The store's own cursor is opaque; ours is the last entry shown, which is all a
		// descending query needs to resume strictly before it.
		q.SKTo = string(b)
	}
	var out Page
	for {
		p, err := st.Query(ctx, q)
		if err != nil {
			return Page{}, fmt.Errorf("read the audit log of %s: %w", account, err)
		}
		for _, it := range p.Items {
			if q.SKTo != "" && it.SK >= q.SKTo {
				continue
			}
			var e Entry
			if json.Unmarshal(it.Data, &e) != nil {
				continue
			}
			if len(out.Entries) == limit {
				out.Next = base64.RawURLEncoding.EncodeToString([]byte(out.Entries[limit-1].ID))
				return out, nil
			}
			e.ID = it.SK
			out.Entries = append(out.Entries, e)
		}
		if p.Next == "" {
			return out, nil
		}
		q.Cursor = p.Next
	}
}

// ErrBadCursor is returned for a cursor this package did not make.
var ErrBadCursor = errors.New("audit: not a cursor of the audit log")
