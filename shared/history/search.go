package history

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/store"
)

// Finding contacts by email prefix and by name, a page at a time, without scanning.
//
// By email: a contact's profile item is in GSI1 under "A#<acct>#CS#<c>", c being the first
// character of the email, sorted by email. An exact address or a prefix of one is a query of one
// partition, and costs nothing extra to keep: the profile is written anyway.
//
// By name: each contact with a name has small items in partition "A#<acct>#CN#<c>", sort key
// "<name>#<email>", c being the first character of the name: one for the full name ("jane
// doe") and, when it has a first and a last name, one for the last name ("doe"), lower case with
// spaces collapsed. They are written with the profile, and only when its name changes (at most
// two deletes and two puts in that transaction).
//
// A contact whose profile was stored before these indexes existed is found once its profile is
// written again, or after Reindex.

const (
	prefEmailSearch = "#CS#"
	prefNameSearch  = "#CN#"
	// maxNameBytes keeps a name entry well inside a sort key's 1,024 bytes.
	maxNameBytes = 200
	// sortEnd is the greatest character: every key starting with p sorts before p+sortEnd.
	sortEnd = "\U0010FFFF"
)

// searchShard is the partition suffix of a search key: its first character.
func searchShard(key string) string {
	r, _ := utf8.DecodeRuneInString(key)
	if r == utf8.RuneError {
		return "_"
	}
	return string(r)
}

func emailSearchPK(account, email string) string {
	return "A#" + account + prefEmailSearch + searchShard(email)
}

func nameSearchPK(account, entry string) string {
	return "A#" + account + prefNameSearch + searchShard(entry)
}

// NormalizeName is a name as the name index keeps it and matches it: lower case, one space
// between words, no "#".
func NormalizeName(s string) string {
	s = strings.Join(strings.Fields(strings.ToLower(strings.ReplaceAll(s, "#", " "))), " ")
	for len(s) > maxNameBytes {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}

// nameEntries are the name index's entries for a profile.
func nameEntries(p domain.Contact) []string {
	first, last := NormalizeName(p.FirstName), NormalizeName(p.LastName)
	full := NormalizeName(first + " " + last)
	var out []string
	if full != "" {
		out = append(out, full)
	}
	if first != "" && last != "" && last != full {
		out = append(out, last)
	}
	return out
}

func nameItemKey(account, email, entry string) store.Key {
	return store.Key{PK: nameSearchPK(account, entry), SK: entry + "#" + email}
}

// nameWrites are the writes that move a contact's name entries from before's names to after's.
func nameWrites(account, email string, before, after []string) []store.Write {
	var ws []store.Write
	for _, e := range before {
		if !contains(after, e) {
			ws = append(ws, store.DeleteKey(nameItemKey(account, email, e), store.Always))
		}
	}
	for _, e := range after {
		if !contains(before, e) {
			k := nameItemKey(account, email, e)
			ws = append(ws, store.PutItem(store.Item{PK: k.PK, SK: k.SK, Data: mustJSON(nameDoc{Email: email, Name: e})}, store.Always))
		}
	}
	return ws
}

type nameDoc struct {
	Email string `json:"email"`
	Name  string `json:"name"`
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ContactHit is one contact found by a search.
type ContactHit struct {
	Email string
	// Profile is the contact's profile (nil when it could not be read).
	Profile *domain.Contact
}

// SearchPage is a page of contacts found.
type SearchPage struct {
	Hits []ContactHit
	// Next continues the search ("" on the last page).
	Next string
}

// ErrBadCursor is returned for a cursor that is not the Next of an earlier page.
var ErrBadCursor = errors.New("not a cursor of this list (follow the list's own next link)")

func encodeCursor(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func decodeCursor(c string) (string, error) {
	if c == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || !utf8.Valid(b) {
		return "", ErrBadCursor
	}
	return string(b), nil
}

// SearchEmail lists the contacts whose email starts with prefix, in email order.
func (r *Repo) SearchEmail(ctx context.Context, account, prefix, cursor string, limit int) (SearchPage, error) {
	prefix = strings.ToLower(strings.TrimSpace(prefix))
	if prefix == "" {
		return SearchPage{}, errors.New("give the start of an email address to search for")
	}
	after, err := decodeCursor(cursor)
	if err != nil {
		return SearchPage{}, err
	}
	var out SearchPage
	err = r.searchRange(ctx, emailSearchPK(account, prefix), store.GSI1, prefix, after, limit, func(it store.Item) bool {
		var p domain.Contact
		hit := ContactHit{Email: it.GSI1SK}
		if json.Unmarshal(it.Data, &p) == nil {
			hit.Profile = &p
		}
		out.Hits = append(out.Hits, hit)
		return true
	}, func(last store.Item) { out.Next = encodeCursor(last.GSI1SK) })
	if err != nil {
		return SearchPage{}, fmt.Errorf("search the contacts of %s by email: %w", account, err)
	}
	return out, nil
}

// SearchName lists the contacts whose full name or last name starts with query, in name
// order. A contact found under both of its names in one page is listed once.
func (r *Repo) SearchName(ctx context.Context, account, query, cursor string, limit int) (SearchPage, error) {
	q := NormalizeName(query)
	if q == "" {
		return SearchPage{}, errors.New("give the start of a name to search for")
	}
	after, err := decodeCursor(cursor)
	if err != nil {
		return SearchPage{}, err
	}
	var out SearchPage
	seen := map[string]bool{}
	err = r.searchRange(ctx, nameSearchPK(account, q), store.Table, q, after, limit, func(it store.Item) bool {
		var d nameDoc
		if json.Unmarshal(it.Data, &d) != nil || d.Email == "" {
			return false
		}
		if seen[d.Email] {
			return false
		}
		seen[d.Email] = true
		out.Hits = append(out.Hits, ContactHit{Email: d.Email})
		return true
	}, func(last store.Item) { out.Next = encodeCursor(last.SK) })
	if err != nil {
		return SearchPage{}, fmt.Errorf("search the contacts of %s by name: %w", account, err)
	}
	r.loadProfiles(ctx, account, out.Hits)
	return out, nil
}

// searchRange reads the keys from prefix (after cursor) in one partition, and calls keep until
// it has kept limit; more is called with the last item kept when another page follows.
func (r *Repo) searchRange(ctx context.Context, pk string, idx store.Index, prefix, after string, limit int,
	keep func(store.Item) bool, more func(last store.Item)) error {
	if limit <= 0 {
		limit = 50
	}
	q := store.Query{Index: idx, PK: pk, SKFrom: prefix, SKTo: prefix + sortEnd, Limit: limit + 1}
	if after > prefix {
		q.SKFrom = after
	}
	sortKey := func(it store.Item) string {
		if idx == store.GSI1 {
			return it.GSI1SK
		}
		return it.SK
	}
	kept := 0
	var last store.Item
	for {
		p, err := r.s.Query(ctx, q)
		if err != nil {
			return err
		}
		for _, it := range p.Items {
			if sortKey(it) == after {
				continue
			}
			if kept == limit {
				more(last)
				return nil
			}
			if keep(it) {
				kept++
				last = it
			}
		}
		if p.Next == "" {
			return nil
		}
		q.Cursor = p.Next
	}
}

// loadProfiles reads the profiles of hits, a few at a time.
func (r *Repo) loadProfiles(ctx context.Context, account string, hits []ContactHit) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range hits {
		wg.Add(1)
		sem <- struct{}{}
		go func(h *ContactHit) {
			defer wg.Done()
			defer func() { <-sem }()
			if p, err := r.Profile(ctx, account, h.Email); err == nil {
				h.Profile = p
			}
		}(&hits[i])
	}
	wg.Wait()
}

// Profile reads a contact's profile; store.ErrNotFound when it has none.
func (r *Repo) Profile(ctx context.Context, account, email string) (*domain.Contact, error) {
	it, err := r.s.Get(ctx, ContactPK(account, email), skProfile)
	if err != nil {
		return nil, err
	}
	var p domain.Contact
	if err := json.Unmarshal(it.Data, &p); err != nil {
		return nil, fmt.Errorf("contact %s of %s: stored profile is unreadable: %w", email, account, err)
	}
	return &p, nil
}

// Reindex puts one contact's profile into the search indexes, for a profile stored before they
// existed: its profile is written again (under its version) with its email index key, and its
// name entries are written. A contact without a profile is left alone.
func (r *Repo) Reindex(ctx context.Context, account, email string) error {
	for range 5 {
		it, err := r.s.Get(ctx, ContactPK(account, email), skProfile)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reindex %s: %w", email, err)
		}
		var p domain.Contact
		if err := json.Unmarshal(it.Data, &p); err != nil {
			return fmt.Errorf("reindex %s: stored profile is unreadable: %w", email, err)
		}
		v := it.Version
		it.GSI1PK, it.GSI1SK = emailSearchPK(account, email), email
		it.Version = v + 1
		ws := append([]store.Write{store.PutIfVersion(it, v)}, nameWrites(account, email, nil, nameEntries(p))...)
		err = r.s.Transact(ctx, ws)
		if errors.Is(err, store.ErrConditionFailed) {
			continue // written meanwhile by ingest; read it again
		}
		if err != nil {
			return fmt.Errorf("reindex %s: %w", email, err)
		}
		return nil
	}
	return fmt.Errorf("reindex %s: the profile kept changing; run it again", email)
}

// ReindexAll reindexes every contact of the account; progress, when set, is called with the
// count so far.
func (r *Repo) ReindexAll(ctx context.Context, account string, progress func(done int)) (int, error) {
	n := 0
	err := r.EachContact(ctx, account, func(email string) error {
		if err := r.Reindex(ctx, account, email); err != nil {
			return err
		}
		n++
		if progress != nil {
			progress(n)
		}
		return nil
	})
	return n, err
}
