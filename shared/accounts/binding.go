package accounts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/store"
)

// StorePrefix begins the id of every account created by connecting an UltraCart store, and of
// no other: Put refuses to create an account whose id has it, so an account the operator made
// can never be taken for a store's, whatever a merchant id looks like.
const StorePrefix = "uc-"

// IsStoreID reports whether id is in the id space of accounts created by connecting a store.
func IsStoreID(id string) bool { return strings.HasPrefix(id, StorePrefix) }

// ErrReservedID matches *ReservedIDError.
var ErrReservedID = errors.New("account id reserved for connected stores")

// ReservedIDError is an attempt to create an account in the connected stores' id space.
type ReservedIDError struct{ ID string }

func (e *ReservedIDError) Error() string {
	return fmt.Sprintf("account id %q is reserved: ids starting with %q are given to stores that connect through UltraCart (/connect); choose another id", e.ID, StorePrefix)
}

// Is makes errors.Is(err, ErrReservedID) true.
func (e *ReservedIDError) Is(target error) bool { return target == ErrReservedID }

// A binding ties an account to the one UltraCart store allowed to act for it: to sign in to its
// console through UltraCart, to reconnect it, and to receive its webhook credentials. It is
// made when a store first connects (or when an operator's invite for an existing account is
// used) and never moves to another store.
//
// Items: pk "A#<id>", sk "BIND#ultracart" holds the binding; pk "UCM#<MERCHANT>", sk "-"
// points from the merchant id to the account, so one store binds to one account. UltraCart
// does not always say which store granted access (see shared/app), so a binding may start
// without a merchant id and learn it later (NameMerchant).
const (
	skBinding   = "BIND#ultracart"
	merchantPKP = "UCM#"
)

// Binding is an account's UltraCart store.
type Binding struct {
	Account string
	// MerchantID is the store's UltraCart merchant id, or empty while UltraCart has not named it.
	MerchantID string
	BoundAt    time.Time
	version    int64
}

// Errors of bindings.
var (
	// ErrNotBound: the account has no store, or no account has this store.
	ErrNotBound = errors.New("not bound to an UltraCart store")
	// ErrAccountBound: the account is already bound to a store.
	ErrAccountBound = errors.New("the account is already bound to an UltraCart store")
	// ErrStoreBound: the store is already bound to an account.
	ErrStoreBound = errors.New("the UltraCart store is already bound to an account")
)

type bindingDoc struct {
	MerchantID string    `json:"merchant_id,omitempty"`
	BoundAt    time.Time `json:"bound_at"`
}

type merchantDoc struct {
	Account string `json:"account"`
}

// MerchantKey is how a merchant id is compared: trimmed and upper-cased, as UltraCart writes
// merchant ids.
func MerchantKey(merchant string) string { return strings.ToUpper(strings.TrimSpace(merchant)) }

func bindingKey(id string) store.Key { return store.Key{PK: pkPrefix + id, SK: skBinding} }
func merchantKey(m string) store.Key { return store.Key{PK: merchantPKP + MerchantKey(m), SK: "-"} }

// Binding returns account id's binding, or an error matching ErrNotBound.
func (r *Repo) Binding(ctx context.Context, id string) (Binding, error) {
	if err := ValidateID(id); err != nil {
		return Binding{}, fmt.Errorf("%w: %w", ErrNotBound, err)
	}
	k := bindingKey(id)
	it, err := r.store.Get(ctx, k.PK, k.SK)
	if errors.Is(err, store.ErrNotFound) {
		return Binding{}, fmt.Errorf("account %s: %w", id, ErrNotBound)
	}
	if err != nil {
		return Binding{}, fmt.Errorf("read the binding of account %s: %w", id, err)
	}
	var d bindingDoc
	if err := json.Unmarshal(it.Data, &d); err != nil {
		return Binding{}, fmt.Errorf("account %s: the stored binding is not JSON: %w", id, err)
	}
	return Binding{Account: id, MerchantID: d.MerchantID, BoundAt: d.BoundAt, version: it.Version}, nil
}

// BindingOfMerchant returns the binding of the account bound to merchant, or an error matching
// ErrNotBound.
func (r *Repo) BindingOfMerchant(ctx context.Context, merchant string) (Binding, error) {
	if MerchantKey(merchant) == "" {
		return Binding{}, fmt.Errorf("an empty merchant id: %w", ErrNotBound)
	}
	k := merchantKey(merchant)
	it, err := r.store.Get(ctx, k.PK, k.SK)
	if errors.Is(err, store.ErrNotFound) {
		return Binding{}, fmt.Errorf("merchant %s: %w", merchant, ErrNotBound)
	}
	if err != nil {
		return Binding{}, fmt.Errorf("read the binding of merchant %s: %w", merchant, err)
	}
	var d merchantDoc
	if err := json.Unmarshal(it.Data, &d); err != nil {
		return Binding{}, fmt.Errorf("merchant %s: the stored binding is not JSON: %w", merchant, err)
	}
	b, err := r.Binding(ctx, d.Account)
	if err != nil {
		return Binding{}, err
	}
	if MerchantKey(b.MerchantID) != MerchantKey(merchant) {
		// Both items are written in one transaction, so this is a damaged table, not a race.
		return Binding{}, fmt.Errorf("merchant %s points to account %s, which is bound to %q", merchant, d.Account, b.MerchantID)
	}
	return b, nil
}

// Bind stores b, failing with ErrAccountBound or ErrStoreBound when either side is taken.
// extra writes (such as using up an invite) are applied in the same transaction; when one of
// their conditions fails, nothing is written and the error matches store.ErrConditionFailed
// without matching either of the two.
func (r *Repo) Bind(ctx context.Context, b Binding, extra ...store.Write) error {
	if err := ValidateID(b.Account); err != nil {
		return err
	}
	if b.BoundAt.IsZero() {
		b.BoundAt = r.clk.Now()
	}
	ws, err := bindingWrites(b, 0)
	if err != nil {
		return err
	}
	n := len(ws)
	ws = append(ws, extra...)
	err = r.store.Transact(ctx, ws)
	var te *store.TransactionError
	if errors.As(err, &te) && len(te.Failed) > 0 {
		for _, f := range te.Failed {
			switch {
			case f.Index == 0:
				return fmt.Errorf("account %s: %w", b.Account, ErrAccountBound)
			case f.Index == 1 && f.Index < n:
				return fmt.Errorf("merchant %s: %w", b.MerchantID, ErrStoreBound)
			}
		}
		return err
	}
	if err != nil {
		return fmt.Errorf("bind account %s: %w", b.Account, err)
	}
	return nil
}

// NameMerchant records the merchant id of a store bound before UltraCart named it. It fails
// with ErrStoreBound when another account has that merchant, and does nothing when the binding
// already names it.
func (r *Repo) NameMerchant(ctx context.Context, id, merchant string) error {
	b, err := r.Binding(ctx, id)
	if err != nil {
		return err
	}
	if MerchantKey(b.MerchantID) == MerchantKey(merchant) {
		return nil
	}
	if b.MerchantID != "" {
		return fmt.Errorf("account %s is bound to merchant %s, not %s: %w", id, b.MerchantID, merchant, ErrAccountBound)
	}
	b.MerchantID = merchant
	ws, err := bindingWrites(b, b.version)
	if err != nil {
		return err
	}
	err = r.store.Transact(ctx, ws)
	var te *store.TransactionError
	if errors.As(err, &te) && len(te.Failed) > 0 {
		for _, f := range te.Failed {
			if f.Index == 1 {
				return fmt.Errorf("merchant %s: %w", merchant, ErrStoreBound)
			}
		}
		return fmt.Errorf("account %s: its binding changed meanwhile: %w", id, err)
	}
	if err != nil {
		return fmt.Errorf("name the merchant of account %s: %w", id, err)
	}
	return nil
}

// bindingWrites are the binding item (new when version is 0, else replacing that version) and,
// with a merchant id, its new merchant pointer.
func bindingWrites(b Binding, version int64) ([]store.Write, error) {
	data, err := json.Marshal(bindingDoc{MerchantID: strings.TrimSpace(b.MerchantID), BoundAt: b.BoundAt.UTC()})
	if err != nil {
		return nil, err
	}
	k := bindingKey(b.Account)
	it := store.Item{PK: k.PK, SK: k.SK, Version: version + 1, Data: data}
	w := store.PutItem(it, store.NotExists)
	if version > 0 {
		w = store.PutIfVersion(it, version)
	}
	ws := []store.Write{w}
	if MerchantKey(b.MerchantID) != "" {
		md, err := json.Marshal(merchantDoc{Account: b.Account})
		if err != nil {
			return nil, err
		}
		mk := merchantKey(b.MerchantID)
		ws = append(ws, store.PutItem(store.Item{PK: mk.PK, SK: mk.SK, Version: 1, Data: md}, store.NotExists))
	}
	return ws, nil
}

// ShowIn adds the binding to out, an account as Public shows it, so `accounts get` says which
// store the account belongs to. The keys are read-only: a put ignores them.
func (b Binding) ShowIn(out map[string]any) {
	out[keyBoundMerchant] = b.MerchantID
	out[keyBoundAt] = formatTime(b.BoundAt)
}
