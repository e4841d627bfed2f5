package accounts

import (
	"bytes"
	"maps"
	"slices"
	"strings"
	"sync"
)

// decodedLimit bounds the accounts a repository keeps decoded: one entry per account and set
// of opened secrets, so a process serving many accounts keeps the busiest of them at little
// memory, and one serving a few keeps them all.
const decodedLimit = 1024

// decoded keeps accounts as Get decoded them, each with the stored item it came from. Every
// Get still reads the item (the table is the only truth: the CLI, the console and other
// processes change accounts), and uses what it kept only when the item read has the same
// version and the same bytes, which makes the same account: so a settings change is in effect
// at the first read after it is saved, here or in any other process. What it spares is the
// decoding: the JSON, the field table and the opening of secrets, which under load cost more
// than the read (a webhook, an ingest and each forwarder batch read the account).
type decoded struct {
	mu      sync.Mutex
	entries map[decodedKey]decodedEntry
}

type decodedKey struct {
	id string
	// open is the names of the secrets opened, sorted and joined: an account read opening
	// fewer secrets must not be handed one that holds more in plaintext, nor the reverse.
	open string
}

type decodedEntry struct {
	version int64
	data    []byte
	acct    Account
	// opened is the plaintext of every secret opened, which a read of the kept account hands
	// to the sealer's scrubbing set again as a decrypt would (see Repo.Get).
	opened []string
}

func newDecoded() *decoded { return &decoded{entries: map[decodedKey]decodedEntry{}} }

func keyOf(id string, open map[string]bool) decodedKey {
	names := slices.Sorted(maps.Keys(open))
	return decodedKey{id: id, open: strings.Join(names, "\x00")}
}

// get returns the account kept for k if it was decoded from exactly this version and data,
// and the plaintexts of the secrets it holds opened.
func (d *decoded) get(k decodedKey, version int64, data []byte) (Account, []string, bool) {
	d.mu.Lock()
	e, ok := d.entries[k]
	d.mu.Unlock()
	if !ok || e.version != version || !bytes.Equal(e.data, data) {
		return Account{}, nil, false
	}
	return cloneAccount(e.acct), e.opened, true
}

// put keeps a, decoded from version and data.
func (d *decoded) put(k decodedKey, version int64, data []byte, a Account) {
	e := decodedEntry{version: version, data: bytes.Clone(data), acct: cloneAccount(a), opened: openedSecrets(a)}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.entries[k]; !ok && len(d.entries) >= decodedLimit {
		// Any one goes: map order is random, and the next read of it decodes it again.
		for old := range d.entries {
			delete(d.entries, old)
			break
		}
	}
	d.entries[k] = e
}

// cloneAccount copies what a caller could change in place: the settings map (its values are
// strings, bools, history modes and secrets, all copied with it).
func cloneAccount(a Account) Account {
	a.Settings = maps.Clone(a.Settings)
	return a
}

// openedSecrets lists the plaintext of every secret of a that was opened.
func openedSecrets(a Account) []string {
	var out []string
	add := func(s Secret) {
		if !s.sealed && s.plain != "" {
			out = append(out, s.plain)
		}
	}
	for _, f := range fieldTable() {
		if s, ok := f.get(&a).(Secret); ok && f.kind == kindSecret {
			add(s)
		}
	}
	for _, v := range a.Settings {
		if s, ok := v.(Secret); ok {
			add(s)
		}
	}
	return out
}
