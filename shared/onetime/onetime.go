// Package onetime keeps the single-use, expiring links an operator hands out: invites to
// connect a store (/connect?invite=...) and console sign-in links (/console/link/...).
//
// A link carries a random token; the table keeps only the token's SHA-256 (item pk
// "OT#<kind>#<hash>", sk "-"), with the account the link is for, when it expires and when it
// was used, so a read of the table cannot use anyone's link. Use marks the item under a version
// check, so of two requests racing with one link only one succeeds. Used and expired links are
// kept a week after their expiry, so a second click is told what happened rather than that the
// link never existed.
package onetime

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/store"
)

// Kind says what a link is for; a token of one kind is unknown as any other.
type Kind string

// Kinds of link.
const (
	Invite      Kind = "invite"
	ConsoleLink Kind = "console"
)

// keep is how long an item outlives its link's expiry, to tell a used or expired link from an
// unknown one.
const keep = 7 * 24 * time.Hour

// Errors of Check and Use; every one means the link must not be honoured.
var (
	ErrUnknown = errors.New("onetime: no such link")
	ErrUsed    = errors.New("onetime: the link was already used")
	ErrExpired = errors.New("onetime: the link has expired")
)

// Ticket is an issued link's record.
type Ticket struct {
	Kind Kind
	// Account is the account the link is for; an invite may leave it empty (a new account).
	Account   string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time

	key     store.Key
	version int64
}

type doc struct {
	Account   string    `json:"account,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	UsedAt    time.Time `json:"used_at,omitzero"`
}

// Tickets issues and checks links in one table.
type Tickets struct {
	st  store.Store
	clk clock.Clock
}

// New returns the links kept in st.
func New(st store.Store, clk clock.Clock) *Tickets {
	if clk == nil {
		clk = clock.System{}
	}
	return &Tickets{st: st, clk: clk}
}

// Issue makes a link of kind for account, valid for ttl, and returns its token.
func (t *Tickets) Issue(ctx context.Context, kind Kind, account string, ttl time.Duration) (string, Ticket, error) {
	if ttl <= 0 {
		return "", Ticket{}, fmt.Errorf("onetime: a link must be valid for some time, got %s", ttl)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", Ticket{}, fmt.Errorf("onetime: random token: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(raw)
	now := t.clk.Now().UTC()
	tk := Ticket{Kind: kind, Account: account, CreatedAt: now, ExpiresAt: now.Add(ttl), key: key(kind, token), version: 1}
	if err := t.st.Write(ctx, store.PutItem(tk.item(), store.NotExists)); err != nil {
		return "", Ticket{}, fmt.Errorf("store the %s link: %w", kind, err)
	}
	return token, tk, nil
}

// Ref names a link without being able to use it (the token's hash), for a record that must
// point at a link, such as a started connect flow.
func Ref(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Check returns the ticket of a link that may still be used, without using it.
func (t *Tickets) Check(ctx context.Context, kind Kind, token string) (Ticket, error) {
	if token == "" || len(token) > 200 {
		return Ticket{}, ErrUnknown
	}
	return t.CheckRef(ctx, kind, Ref(token))
}

// CheckRef is Check for the link that ref (Ref of its token) names.
func (t *Tickets) CheckRef(ctx context.Context, kind Kind, ref string) (Ticket, error) {
	if len(ref) != sha256.Size*2 {
		return Ticket{}, ErrUnknown
	}
	k := store.Key{PK: "OT#" + string(kind) + "#" + ref, SK: "-"}
	it, err := t.st.Get(ctx, k.PK, k.SK)
	if errors.Is(err, store.ErrNotFound) {
		return Ticket{}, ErrUnknown
	}
	if err != nil {
		return Ticket{}, fmt.Errorf("read the %s link: %w", kind, err)
	}
	var d doc
	if err := json.Unmarshal(it.Data, &d); err != nil {
		return Ticket{}, fmt.Errorf("the stored %s link is not JSON: %w", kind, err)
	}
	tk := Ticket{Kind: kind, Account: d.Account, CreatedAt: d.CreatedAt, ExpiresAt: d.ExpiresAt, UsedAt: d.UsedAt, key: k, version: it.Version}
	switch {
	case !tk.UsedAt.IsZero():
		return tk, ErrUsed
	case !t.clk.Now().Before(tk.ExpiresAt):
		return tk, ErrExpired
	}
	return tk, nil
}

// Use checks the link and marks it used; only one of several concurrent uses succeeds.
func (t *Tickets) Use(ctx context.Context, kind Kind, token string) (Ticket, error) {
	tk, err := t.Check(ctx, kind, token)
	if err != nil {
		return tk, err
	}
	w, used := t.UseWrite(tk)
	if err := t.st.Write(ctx, w); err != nil {
		if errors.Is(err, store.ErrConditionFailed) {
			return tk, ErrUsed
		}
		return tk, fmt.Errorf("use the %s link: %w", kind, err)
	}
	return used, nil
}

// UseWrite is the write that marks tk, as Check returned it, used, for a caller that must use
// the link in the same transaction as something else; its condition fails if the link changed
// since Check.
func (t *Tickets) UseWrite(tk Ticket) (store.Write, Ticket) {
	used := tk
	used.UsedAt = t.clk.Now().UTC()
	used.version = tk.version + 1
	return store.PutIfVersion(used.item(), tk.version), used
}

func (tk Ticket) item() store.Item {
	data, _ := json.Marshal(doc{Account: tk.Account, CreatedAt: tk.CreatedAt, ExpiresAt: tk.ExpiresAt, UsedAt: tk.UsedAt})
	return store.Item{PK: tk.key.PK, SK: tk.key.SK, ExpiresAt: tk.ExpiresAt.Add(keep), Version: tk.version, Data: data}
}

func key(kind Kind, token string) store.Key {
	return store.Key{PK: "OT#" + string(kind) + "#" + Ref(token), SK: "-"}
}
