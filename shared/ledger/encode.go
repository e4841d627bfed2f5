package ledger

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"slices"
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
)

// enc builds an injective byte encoding of values: strings are length-prefixed, optional values
// carry a presence byte, slices a count, maps their entries in key order. Two values encode to
// the same bytes exactly when every encoded field is equal, so the encoding serves both as a
// total order on contents (bytes.Compare, the final tie-break of a merge) and, hashed, as a
// content identity (fact ids).
type enc struct{ b []byte }

func (e *enc) u64(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *enc) i64(v int64)  { e.b = binary.AppendVarint(e.b, v) }

func (e *enc) str(s string) {
	e.u64(uint64(len(s)))
	e.b = append(e.b, s...)
}

func (e *enc) boolean(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}

func (e *enc) optBool(v *bool) {
	e.boolean(v != nil)
	if v != nil {
		e.boolean(*v)
	}
}

// time encodes the instant and the zone offset, so two spellings of one instant still differ
// (they would differ once stored, too).
func (e *enc) time(t time.Time) {
	e.boolean(!t.IsZero())
	if t.IsZero() {
		return
	}
	_, off := t.Zone()
	e.i64(t.Unix())
	e.i64(int64(t.Nanosecond()))
	e.i64(int64(off))
}

func (e *enc) money(m domain.Money) {
	e.i64(m.Minor)
	e.str(m.Currency)
}

func (e *enc) strs(ss []string) {
	e.u64(uint64(len(ss)))
	for _, s := range ss {
		e.str(s)
	}
}

func (e *enc) strMap(m map[string]string) {
	e.u64(uint64(len(m)))
	for _, k := range sortedKeys(m) {
		e.str(k)
		e.str(m[k])
	}
}

func (e *enc) address(a domain.Address) {
	e.str(a.FirstName)
	e.str(a.LastName)
	e.str(a.Company)
	e.str(a.Address1)
	e.str(a.Address2)
	e.str(a.City)
	e.str(a.Region)
	e.str(a.PostalCode)
	e.str(a.CountryCode)
}

func (e *enc) utm(u domain.UTM) {
	e.str(u.Source)
	e.str(u.Medium)
	e.str(u.Campaign)
	e.str(u.Term)
	e.str(u.Content)
	e.str(u.ID)
	e.strMap(u.ClickIDs)
	e.str(u.IterableCampaignID)
	e.str(u.IterableTemplateID)
	e.time(u.At)
}

func (e *enc) optUTM(u *domain.UTM) {
	e.boolean(u != nil)
	if u != nil {
		e.utm(*u)
	}
}

func (e *enc) lineItem(li domain.LineItem) {
	e.str(li.SKU)
	e.str(li.Name)
	e.i64(li.Quantity)
	e.money(li.UnitPrice)
	e.money(li.Discount)
	e.money(li.Total)
	e.str(li.ImageURL)
	e.thumbnails(li.Thumbnails)
	e.str(li.URL)
	e.strs(li.Categories)
	e.str(li.Kind)
	e.money(li.Refunded)
	e.i64(li.QtyRefunded)
	e.str(li.SubscriptionID)
}

// thumbnails encodes nothing for none, so lines and items stored before thumbnails were kept
// keep their hashes.
func (e *enc) thumbnails(ts []domain.Thumbnail) {
	if len(ts) == 0 {
		return
	}
	e.str("thumbnails")
	e.i64(int64(len(ts)))
	for _, t := range ts {
		e.i64(int64(t.Width))
		e.i64(int64(t.Height))
		e.str(t.URL)
	}
}

// hash is a short content identity: 64 bits of SHA-256 in hex, plenty to tell one entity's
// states apart inside a fact id.
func (e *enc) hash() string {
	sum := sha256.Sum256(e.b)
	return hex.EncodeToString(sum[:8])
}

func sortedKeys[V any](m map[string]V) []string {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
