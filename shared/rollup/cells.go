package rollup

import (
	"encoding/base64"
	"encoding/binary"
	"math/bits"
	"strconv"
	"strings"

	"github.com/cartrelay/cartrelay/shared/domain"
)

// None is what a report shows for a touch, a touch field or a product that is absent.
const None = "(none)"

// Touch is a marketing touch as reports group it: utm_source, utm_medium and utm_campaign,
// trimmed and lower-cased (UTMs are typed by hand, so "Google" and "google " are one source), an
// absent field being None.
type Touch struct {
	Source, Medium, Campaign string
}

// NoTouch is the touch of an order or contact that has none.
var NoTouch = Touch{None, None, None}

// TouchOf normalizes a UTM.
func TouchOf(u domain.UTM) Touch {
	return Touch{norm(u.Source), norm(u.Medium), norm(u.Campaign)}
}

func norm(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return None
	}
	return s
}

// Kind says what a cell counts; each kind has its own dimensions (see the Cell constructors).
type Kind byte

// Cell kinds.
const (
	KindOrder         Kind = 'o' // placed orders on their paid day
	KindProduct       Kind = 'p' // product lines of placed orders on their paid day
	KindRefund        Kind = 'r' // refunds (chargebacks included) on the day they happened
	KindProductRefund Kind = 'q' // the part of a refund that names a product, on its day
	KindExcluded      Kind = 'x' // orders that are not revenue (test, rejected, deleted, unpaid)
	KindConversion    Kind = 'w' // page viewers whose first order followed their first view
	KindSub           Kind = 's' // subscription starts, ends and pauses
	KindSubProduct    Kind = 't' // the same per subscribed product
	KindCohort        Kind = 'c' // customer cohorts: customers and net revenue by months since
	KindLead          Kind = 'l' // lead cohorts: leads and net revenue by months since first seen
	KindAcquisition   Kind = 'a' // new customers by the day of their first order
	KindPageView      Kind = 'v' // page views and new visitors by quarter hour and source
	labelSep               = "\x1f"
)

// Cell is one row of a rollup item: a kind and its dimensions, joined into a label. The label is
// what a report reads back; its hash names the cell's counters.
type Cell string

func cell(k Kind, dims ...string) Cell {
	n := 1
	for _, d := range dims {
		n += len(d) + 1
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteByte(byte(k))
	for _, d := range dims {
		b.WriteString(labelSep)
		b.WriteString(d)
	}
	return Cell(b.String())
}

// Kind is the cell's kind.
func (c Cell) Kind() Kind {
	if c == "" {
		return 0
	}
	return Kind(c[0])
}

// Dims are the cell's dimensions, in its kind's order.
func (c Cell) Dims() []string {
	if len(c) < 2 {
		return nil
	}
	return strings.Split(string(c[2:]), labelSep)
}

// ID names the cell inside an item: 96 bits of FNV-128a over the label, in base64url (16
// characters). Counters are "<id>:<measure>" and the label is stored under the id. 96 bits keep
// a collision between two of an account's cells far less likely than a disk error.
func (c Cell) ID() string {
	// hash/fnv's FNV-128a, over the label without copying it: a rebuild names every cell of an
	// account, and hash.Hash would take a copy of each label as a []byte.
	const primeLower, primeShift = 0x13b, 24
	hi, lo := uint64(0x6c62272e07bb0142), uint64(0x62b821756295c58d)
	for i := 0; i < len(c); i++ {
		lo ^= uint64(c[i])
		h, l := bits.Mul64(primeLower, lo)
		hi, lo = h+lo<<primeShift+primeLower*hi, l
	}
	var sum [16]byte
	binary.BigEndian.PutUint64(sum[:8], hi)
	binary.BigEndian.PutUint64(sum[8:], lo)
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

// CounterName is the name of the cell's counter of measure m.
func CounterName(id, m string) string { return id + ":" + m }

// SplitCounter splits a counter name into cell id and measure.
func SplitCounter(name string) (id, m string, ok bool) {
	return strings.Cut(name, ":")
}

// Segment is what every order cell is split by: the order's source and currency, the contact's
// first touch and the order's last touch. Report filters select on these.
type Segment struct {
	Source   string
	Currency string
	First    Touch
	Last     Touch
}

// cell is the cell of kind k over the segment's dimensions and extra, built without an
// intermediate slice on the heap (every order of a rebuild names several cells).
func (s Segment) cell(k Kind, extra ...string) Cell {
	d := [10]string{s.Source, s.Currency, s.First.Source, s.First.Medium, s.First.Campaign,
		s.Last.Source, s.Last.Medium, s.Last.Campaign}
	return cell(k, append(d[:8], extra...)...)
}

// SegmentOf reads the segment back from the first eight dimensions of a cell.
func SegmentOf(dims []string) Segment {
	var s Segment
	if len(dims) >= 8 {
		s = Segment{dims[0], dims[1], Touch{dims[2], dims[3], dims[4]}, Touch{dims[5], dims[6], dims[7]}}
	}
	return s
}

// Cell constructors: the dimensions of each kind.

// OrderCell is a KindOrder cell.
func OrderCell(s Segment) Cell { return s.cell(KindOrder) }

// ProductCell is a KindProduct cell.
func ProductCell(s Segment, sku string) Cell { return s.cell(KindProduct, sku) }

// RefundCell is a KindRefund cell.
func RefundCell(s Segment) Cell { return s.cell(KindRefund) }

// ProductRefundCell is a KindProductRefund cell.
func ProductRefundCell(s Segment, sku string) Cell { return s.cell(KindProductRefund, sku) }

// ExcludedCell is a KindExcluded cell.
func ExcludedCell(s Segment, reason string) Cell { return s.cell(KindExcluded, reason) }

// ConversionCell is a KindConversion cell: the segment of the first order and the source of
// the first page view.
func ConversionCell(s Segment, viewSource string) Cell {
	return s.cell(KindConversion, viewSource)
}

// SubCell is a KindSub cell: the segment of the subscription (its source and currency, the
// contact's first touch, the last touch of the order that started it).
func SubCell(s Segment) Cell { return s.cell(KindSub) }

// SubProductCell is a KindSubProduct cell.
func SubProductCell(s Segment, sku string) Cell { return s.cell(KindSubProduct, sku) }

// CohortKey is what cohort, lead and acquisition cells are split by: the source of the first
// order, the currency of the revenue, and the contact's first touch.
type CohortKey struct {
	Source   string
	Currency string
	First    Touch
}

func (k CohortKey) cell(kind Kind, extra ...string) Cell {
	d := [6]string{k.Source, k.Currency, k.First.Source, k.First.Medium, k.First.Campaign}
	return cell(kind, append(d[:5], extra...)...)
}

// CohortKeyOf reads the key back from the first five dimensions of a cell.
func CohortKeyOf(dims []string) CohortKey {
	var k CohortKey
	if len(dims) >= 5 {
		k = CohortKey{dims[0], dims[1], Touch{dims[2], dims[3], dims[4]}}
	}
	return k
}

// CohortCell is a KindCohort cell.
func CohortCell(k CohortKey) Cell { return k.cell(KindCohort) }

// LeadCell is a KindLead cell.
func LeadCell(k CohortKey) Cell { return k.cell(KindLead) }

// AcquisitionCell is a KindAcquisition cell for the day of month of the first order.
func AcquisitionCell(k CohortKey, day int) Cell {
	return k.cell(KindAcquisition, twoDigits(day))
}

// PageViewCell is a KindPageView cell: the quarter hour of the UTC day (0 to 95) and the view's
// source.
func PageViewCell(quarter int, source string) Cell {
	return cell(KindPageView, twoDigits(quarter), source)
}

func twoDigits(n int) string {
	if n < 10 {
		return "0" + strconv.Itoa(n)
	}
	return strconv.Itoa(n)
}
