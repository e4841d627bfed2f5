package ontraport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
)

// orderDone is remembered with an OrderPlaced (and a partial refund): the refund of the order
// finds the transaction to refund here.
type orderDone struct {
	ContactID       int64  `json:"contact_id,omitempty"`
	TransactionID   int64  `json:"transaction_id,omitempty"`
	InvoiceID       int64  `json:"invoice_id"`
	ExternalOrderID string `json:"external_order_id"`
	// Adopted is true when the transaction existed already (a redelivery, or one logged before
	// a crash) and none was created.
	Adopted bool `json:"adopted,omitempty"`
	// PartnerID is the referring partner's contact id when the order had an affiliate.
	PartnerID int64 `json:"partner_id,omitempty"`
}

// orderPlaced merges the buyer into ONTRAPORT (with the referring affiliate), then logs the
// purchase once: an existing transaction with the order key as external_order_id is adopted.
func (s *session) orderPlaced(ctx context.Context, f domain.Fact) (result, error) {
	if !s.cfg.orders {
		return s.skip("purchases are off (ontraport.disable_orders)")
	}
	o := f.Order
	if o == nil || o.Key == "" {
		return result{}, fmt.Errorf("%w: OrderPlaced without an order", ErrBadFact)
	}
	p := orderPerson(*o)
	p.Email = factEmail(f)
	fields := contactFields(p)
	var partner int64
	aff := o.Affiliate
	if aff != nil && (aff.ID == "" && aff.Name == "" && aff.Email == "") {
		aff = nil
	}
	if aff != nil && !s.cfg.affiliates {
		s.note("affiliate %s not sent (ontraport.disable_affiliates)", affiliateLabel(*aff))
		aff = nil
	}
	s.prefetchOrder(ctx, *o, p.Email, aff)
	if aff != nil {
		var err error
		if partner, err = s.partnerID(ctx, o.Source, *aff); err != nil {
			return result{}, err
		}
		if partner > 0 && strings.EqualFold(aff.Email, p.Email) {
			s.note("the buyer is the affiliate; referrer fields not set")
			partner = 0
		}
		if partner > 0 {
			fields["lreferrer"] = partner
		}
	}
	// One lookup of the field keys for both fields, after the partner's (a dry run caches
	// nothing, so each lookup is one more recorded request).
	n := s.cfg.fields
	keys, err := s.fieldKeys(ctx, n.paymentStatus, n.affiliate)
	if err != nil {
		return result{}, err
	}
	if k := keys[n.paymentStatus]; k != "" {
		fields[k] = paymentPaid
	}
	if k := keys[n.affiliate]; k != "" && aff != nil {
		fields[k] = affiliateLabel(*aff)
	}
	cr, err := s.upsertContact(ctx, fields)
	if err != nil {
		return result{}, err
	}
	if !o.PaymentFailedAt.IsZero() && s.cfg.tagPaymentDeclined != "" {
		// The declined payment went through after all.
		if err := s.c.tagContacts(ctx, []int64{cr.ID}, []string{s.cfg.tagPaymentDeclined}, true); err != nil {
			return result{}, err
		}
	}
	if aff != nil {
		// Referrer and tag come before the purchase, so an automation that starts on the
		// purchase already sees them.
		if err := s.referContact(ctx, cr, partner); err != nil {
			return result{}, err
		}
		if s.cfg.tagAffiliate != "" {
			if err := s.c.tagContacts(ctx, []int64{cr.ID}, []string{s.cfg.tagAffiliate}, false); err != nil {
				return result{}, err
			}
		}
	}
	prices := map[string]domain.Money{}
	for _, it := range o.Items {
		prices[it.SKU] = it.UnitPrice
	}
	tx, adopted, err := s.ensureTransaction(ctx, o.Key, cr.ID, prices, func() ([]line, time.Time, error) {
		lines, err := planOrder(*o)
		return lines, firstTime(o.PaidAt, f.OccurredAt, o.CreatedAt), err
	})
	if errors.Is(err, ErrNothingToLog) {
		return s.skip("order %s has no items and no amount; nothing to log", o.Key)
	}
	if err != nil {
		return result{}, err
	}
	return sent(orderDone{ContactID: cr.ID, TransactionID: tx.TransactionID, InvoiceID: tx.InvoiceID,
		ExternalOrderID: o.Key, Adopted: adopted, PartnerID: partner}), nil
}

// prefetchOrder reads together what orderPlaced looks up in the cache: the partner, the
// field keys, the buyer's contact id, the transaction and the products.
func (s *session) prefetchOrder(ctx context.Context, o domain.Order, email string, aff *domain.Affiliate) {
	pks := []string{metaPK(s.acct.ID), txPK(s.acct.ID, o.Key)}
	if email != "" {
		pks = append(pks, contactPK(s.acct.ID, strings.ToLower(email)))
	}
	if aff != nil && aff.Email != "" {
		pks = append(pks, partnerPK(s.acct.ID, string(o.Source)+":"+firstNonEmpty(aff.ID, aff.Email)))
	}
	// The products of the lines logged, the shipping, tax and fee lines' own among them.
	lines, _ := planOrder(o)
	for _, l := range lines {
		pks = append(pks, productPK(s.acct.ID, l.SKU))
	}
	s.cache.prefetch(ctx, pks...)
}

// ensureTransaction returns the transaction logged for external id ext, creating it only when
// neither this destination's record nor ONTRAPORT knows one. ONTRAPORT is asked (GET
// /Transactions with condition external_order_id = ext) only when an earlier attempt ended
// without knowing whether it logged the transaction (a crash between ONTRAPORT's answer and
// the record, a timeout after ONTRAPORT did the work): see txClaim. A new order of known
// products so costs the transaction alone.
func (s *session) ensureTransaction(ctx context.Context, ext string, contactID int64, prices map[string]domain.Money,
	plan func() ([]line, time.Time, error)) (txDoc, bool, error) {
	if d, ok, err := s.cache.transaction(ctx, ext); err != nil {
		return txDoc{}, false, err
	} else if ok {
		s.note("transaction %d already logged for %s; adopted", d.InvoiceID, ext)
		return d, true, nil
	}
	// Claim the creation before looking: a process that finds nothing after the claim knows no
	// other one is between its own lookup and its creation.
	cl, err := s.cache.claimTx(ctx, ext, claimTTL)
	if err != nil {
		return txDoc{}, false, err
	}
	if cl.Logged != nil {
		s.note("transaction %d already logged for %s; adopted", cl.Logged.InvoiceID, ext)
		return *cl.Logged, true, nil
	}
	d, adopted, err := s.logTransaction(ctx, cl, ext, contactID, prices, plan)
	if err != nil {
		cl.release(ctx)
		return txDoc{}, false, err
	}
	if err := cl.logged(ctx, d); err != nil {
		// The claim stays until it runs out; a redelivery then asks ONTRAPORT and adopts.
		s.log.Warn("could not remember the ONTRAPORT transaction", slog.Any("error", err))
	}
	return d, adopted, nil
}

// logTransaction adopts the transaction an earlier attempt may have logged, or logs it.
func (s *session) logTransaction(ctx context.Context, cl *txClaim, ext string, contactID int64, prices map[string]domain.Money,
	plan func() ([]line, time.Time, error)) (txDoc, bool, error) {
	if cl.Unknown {
		rows, err := s.c.findTransactions(ctx, ext)
		if err != nil {
			return txDoc{}, false, err
		}
		if len(rows) > 0 {
			best := rows[0]
			for _, r := range rows[1:] {
				if r.ID < best.ID {
					best = r
				}
			}
			if len(rows) > 1 {
				s.note("%d ONTRAPORT transactions carry external_order_id %s; adopted the oldest, %d", len(rows), ext, best.ID)
			} else {
				s.note("ONTRAPORT already has transaction %d for %s; adopted", best.ID, ext)
			}
			d := txDoc{ContactID: int64(best.ContactID), InvoiceID: int64(best.ID)}
			if d.ContactID == 0 {
				d.ContactID = contactID
			}
			s.log.Info("adopted an existing ONTRAPORT transaction", slog.String("external_order_id", ext), slog.Int64("invoice_id", d.InvoiceID))
			return d, true, nil
		}
	}
	lines, at, err := plan()
	if err != nil {
		return txDoc{}, false, err
	}
	ids, err := s.productIDs(ctx, lines, prices)
	if err != nil {
		return txDoc{}, false, err
	}
	t, err := buildTransaction(contactID, ext, at, s.cfg.invoiceTemplate, lines, ids)
	if err != nil {
		return txDoc{}, false, err
	}
	r, err := s.c.processManual(ctx, t)
	if rest := withoutCoupons(lines); err != nil && refused(err) && len(rest) < len(lines) {
		// Whether ONTRAPORT takes a zero-priced line is not documented. A refusal created
		// nothing, so the purchase is logged without its coupon lines rather than held back.
		s.note("ONTRAPORT refused the transaction with its coupon lines (%v); logged without them", err)
		if t, err = buildTransaction(contactID, ext, at, s.cfg.invoiceTemplate, rest, ids); err != nil {
			return txDoc{}, false, err
		}
		r, err = s.c.processManual(ctx, t)
	}
	if err != nil {
		return txDoc{}, false, err
	}
	d := txDoc{ContactID: contactID, TransactionID: r.TransactionID, InvoiceID: r.InvoiceID}
	if d.InvoiceID <= 0 {
		// The transaction object's id is what refunds select; older answers carry only the
		// transaction id.
		d.InvoiceID = r.TransactionID
	}
	if s.cfg.dry {
		// Nothing was sent: the ids are placeholders, which a log line must not pass off as
		// ONTRAPORT's.
		s.log.Info("dry run: would log a transaction in ONTRAPORT", slog.String("external_order_id", ext),
			slog.String("total", string(t.Offer.GrandTotal)))
		return d, false, nil
	}
	s.log.Info("logged a transaction in ONTRAPORT", slog.String("external_order_id", ext),
		slog.Int64("invoice_id", d.InvoiceID), slog.String("total", string(t.Offer.GrandTotal)))
	return d, false, nil
}

// withoutCoupons is lines without the coupon lines.
func withoutCoupons(lines []line) []line {
	out := make([]line, 0, len(lines))
	for _, l := range lines {
		if !isCouponLine(l) {
			out = append(out, l)
		}
	}
	return out
}

// refused reports whether ONTRAPORT refused a request (a 4xx other than a rate limit or timeout):
// nothing was done, and the same request would be refused again.
func refused(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500 && !ae.Temporary()
}

func (s *session) rememberTransaction(ctx context.Context, ext string, d txDoc) {
	if err := s.cache.putTransaction(ctx, ext, d); err != nil {
		// The lookup in ONTRAPORT still prevents a duplicate.
		s.log.Warn("could not remember the ONTRAPORT transaction", slog.Any("error", err))
	}
}

// productIDs maps every SKU of lines to an ONTRAPORT product, creating missing ones.
func (s *session) productIDs(ctx context.Context, lines []line, prices map[string]domain.Money) (map[string]int64, error) {
	ids := map[string]int64{}
	for _, l := range lines {
		if ids[l.SKU] > 0 {
			continue
		}
		price, ok := prices[l.SKU]
		if !ok {
			price = domain.Money{Currency: l.Unit.Currency}
		}
		id, _, err := s.productID(ctx, l.SKU, product{Name: l.Name, SKU: l.SKU, Price: decimal(price.Minor, price.Currency)})
		if err != nil {
			return nil, err
		}
		ids[l.SKU] = id
	}
	return ids, nil
}

// productID finds the product with the SKU (remembered, then Products with condition sku =
// value) or creates it. A product created by a failed delivery is found by the next one's
// lookup, so none is created twice.
func (s *session) productID(ctx context.Context, sku string, p product) (id int64, created bool, err error) {
	if id, err := s.cache.product(ctx, sku); err != nil || id > 0 {
		return id, false, err
	}
	id, found, err := s.c.findProduct(ctx, sku)
	if err != nil {
		return 0, false, err
	}
	if !found {
		if id, err = s.c.createProduct(ctx, p); err != nil {
			return 0, false, err
		}
		created = true
		s.note("created ONTRAPORT product %d for SKU %s", id, sku)
	}
	if err := s.cache.putProduct(ctx, sku, id); err != nil {
		s.log.Warn("could not remember the ONTRAPORT product", slog.Any("error", err))
	}
	return id, created, nil
}

// partnerID finds the ONTRAPORT contact of the referring affiliate, by the affiliate's email:
// partners are contacts in a partner program, and the API cannot create partners (they are
// read-only). 0 when the affiliate cannot be found.
func (s *session) partnerID(ctx context.Context, src domain.Source, a domain.Affiliate) (int64, error) {
	if a.Email == "" {
		s.note("affiliate %s has no email, so its ONTRAPORT partner cannot be found; referrer fields not set", affiliateLabel(a))
		return 0, nil
	}
	pk := partnerPK(s.acct.ID, string(src)+":"+firstNonEmpty(a.ID, a.Email))
	var doc struct {
		ID   int64 `json:"id"`
		Miss bool  `json:"miss"`
	}
	if ok, err := s.cache.get(ctx, pk, &doc); err != nil {
		return 0, err
	} else if ok && (doc.ID > 0 || doc.Miss) {
		if doc.Miss {
			s.note("affiliate %s is not an ONTRAPORT contact; referrer fields not set", a.Email)
		}
		return doc.ID, nil
	}
	id, found, err := s.c.contactIDByEmail(ctx, a.Email)
	if err != nil {
		return 0, err
	}
	doc.ID, doc.Miss = id, !found
	ttl := partnerTTL
	if !found {
		ttl = partnerMissTTL
		s.note("affiliate %s is not an ONTRAPORT contact; referrer fields not set", a.Email)
	}
	if err := s.cache.put(ctx, pk, doc, ttl); err != nil {
		s.log.Warn("could not remember the ONTRAPORT partner", slog.Any("error", err))
	}
	return id, nil
}

// referContact sets the first referrer when the contact has none. The last referrer went with
// the merge already. A new contact has none; an existing one is read.
func (s *session) referContact(ctx context.Context, cr contactResult, partner int64) error {
	if partner <= 0 || partner == cr.ID {
		return nil
	}
	first := int64(0)
	if !cr.Created {
		var err error
		if first, err = s.c.firstReferrer(ctx, cr.ID); err != nil {
			return err
		}
	}
	if first > 0 {
		return nil
	}
	return s.c.updateContact(ctx, cr.ID, map[string]any{"freferrer": partner})
}

func factEmail(f domain.Fact) string {
	if f.Email != "" {
		return f.Email
	}
	if f.Order != nil {
		return f.Order.Email
	}
	return ""
}

func firstTime(ts ...time.Time) time.Time {
	for _, t := range ts {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
