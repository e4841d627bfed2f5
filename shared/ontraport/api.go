package ontraport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Endpoints below the base URL (https://api.ontraport.com/1).
const (
	pathSaveOrUpdate  = "/Contacts/saveorupdate"
	pathContacts      = "/Contacts"
	pathContact       = "/Contact"
	pathContactsMeta  = "/Contacts/meta"
	pathByEmail       = "/object/getByEmail"
	pathProducts      = "/Products"
	pathTransactions  = "/Transactions"
	pathTransaction   = "/Transaction"
	pathProcessManual = "/transaction/processManual"
	pathRefund        = "/transaction/refund"
	pathTagByName     = "/objects/tagByName"
)

// Object type ids ONTRAPORT's generic endpoints take.
const (
	objectContact     = 0
	objectTransaction = 46
)

// Transaction statuses (object 46's status field).
const (
	statusPaid     = 1
	statusRefunded = 2
)

// flexInt reads an id that ONTRAPORT sends as a number or as a string ("123"); empty, null and
// "0" are 0 (no id).
type flexInt int64

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(strings.TrimSpace(string(b)), `"`)
	if s == "" || s == "null" {
		*f = 0
		return nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		x, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || x != float64(int64(x)) {
			return fmt.Errorf("not an id: %s", b)
		}
		n = int64(x)
	}
	*f = flexInt(n)
	return nil
}

// explicitIDs checks the selection of a bulk operation (refund, tag). ONTRAPORT treats an empty
// selection, or ids=0, as "every object of the type": a refund of every transaction, a tag on
// every contact. Such a request is never sent.
func explicitIDs(ids []int64) ([]int64, error) {
	if len(ids) == 0 {
		return nil, ErrEmptySelection
	}
	for _, id := range ids {
		if id <= 0 {
			return nil, fmt.Errorf("%w: id %d", ErrEmptySelection, id)
		}
	}
	return ids, nil
}

// equals is a search condition "field = value" in ONTRAPORT's condition syntax.
func equals(field, value string) string {
	b, _ := json.Marshal([]any{map[string]any{
		"field": map[string]string{"field": field}, "op": "=", "value": map[string]string{"value": value},
	}})
	return string(b)
}

// contactResult is the contact saveorupdate created or merged into.
type contactResult struct {
	ID      int64
	Created bool
}

// saveOrUpdate creates the contact or merges fields into the one with the same email. A new
// contact comes back as data.id, a merge as data.attrs.id; both are read.
func (c *client) saveOrUpdate(ctx context.Context, fields map[string]any) (contactResult, error) {
	data, err := c.do(ctx, call{method: http.MethodPost, path: pathSaveOrUpdate, body: fields, safe: true})
	if err != nil {
		return contactResult{}, err
	}
	var d struct {
		ID    flexInt `json:"id"`
		Attrs *struct {
			ID flexInt `json:"id"`
		} `json:"attrs"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return contactResult{}, fmt.Errorf("%w: saveorupdate data %s: %w", ErrUnexpectedResponse, shorten(string(data), 200), err)
	}
	switch {
	case d.ID > 0:
		return contactResult{ID: int64(d.ID), Created: true}, nil
	case d.Attrs != nil && d.Attrs.ID > 0:
		return contactResult{ID: int64(d.Attrs.ID)}, nil
	}
	return contactResult{}, fmt.Errorf("%w: saveorupdate returned no contact id: %s", ErrUnexpectedResponse, shorten(string(data), 200))
}

// updateContact changes fields of the contact with id.
func (c *client) updateContact(ctx context.Context, id int64, fields map[string]any) error {
	body := map[string]any{"id": id}
	for k, v := range fields {
		body[k] = v
	}
	_, err := c.do(ctx, call{method: http.MethodPut, path: pathContacts, body: body, safe: true})
	return err
}

// firstReferrer reads the contact's first referring partner (0 when none).
func (c *client) firstReferrer(ctx context.Context, id int64) (int64, error) {
	data, err := c.do(ctx, call{method: http.MethodGet, path: pathContact,
		query: url.Values{"id": {strconv.FormatInt(id, 10)}}, safe: true})
	if err != nil {
		return 0, err
	}
	var d struct {
		FReferrer flexInt `json:"freferrer"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return 0, fmt.Errorf("%w: contact %d: %w", ErrUnexpectedResponse, id, err)
	}
	return int64(d.FReferrer), nil
}

// contactIDByEmail finds a contact by email; found is false when there is none.
func (c *client) contactIDByEmail(ctx context.Context, email string) (id int64, found bool, err error) {
	data, err := c.do(ctx, call{method: http.MethodGet, path: pathByEmail,
		query: url.Values{"objectID": {strconv.Itoa(objectContact)}, "email": {email}}, safe: true})
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	var d struct {
		ID flexInt `json:"id"`
	}
	if json.Unmarshal(data, &d) != nil || d.ID <= 0 {
		return 0, false, nil
	}
	return int64(d.ID), true, nil
}

// contactFieldKeys reads the contact fields' metadata: lower-cased field name (alias) → key.
func (c *client) contactFieldKeys(ctx context.Context) (map[string]string, error) {
	data, err := c.do(ctx, call{method: http.MethodGet, path: pathContactsMeta, query: url.Values{"format": {"byId"}}, safe: true})
	if err != nil {
		return nil, err
	}
	type meta struct {
		Fields map[string]struct {
			Alias string `json:"alias"`
		} `json:"fields"`
	}
	// The metadata is keyed by object id ({"0": {...}}); some answers put it at the top.
	var byObject map[string]json.RawMessage
	if err := json.Unmarshal(data, &byObject); err != nil {
		return nil, fmt.Errorf("%w: contact metadata: %w", ErrUnexpectedResponse, err)
	}
	raw := data
	if m, ok := byObject[strconv.Itoa(objectContact)]; ok {
		raw = m
	}
	var m meta
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%w: contact metadata: %w", ErrUnexpectedResponse, err)
	}
	out := make(map[string]string, len(m.Fields))
	for key, f := range m.Fields {
		if f.Alias != "" {
			out[strings.ToLower(strings.TrimSpace(f.Alias))] = key
		}
	}
	return out, nil
}

// product is what cartrelay sets on an ONTRAPORT product.
type product struct {
	Name  string      `json:"name"`
	Price json.Number `json:"price"`
	SKU   string      `json:"sku,omitempty"`
}

// findProduct looks a product up by SKU (Products with condition sku = value).
func (c *client) findProduct(ctx context.Context, sku string) (int64, bool, error) {
	data, err := c.do(ctx, call{method: http.MethodGet, path: pathProducts, safe: true, query: url.Values{
		"condition": {equals("sku", sku)}, "listFields": {"id,name,sku"}, "range": {"50"},
	}})
	if err != nil {
		return 0, false, err
	}
	var rows []struct {
		ID  flexInt `json:"id"`
		SKU string  `json:"sku"`
	}
	if err := json.Unmarshal(data, &rows); err != nil {
		return 0, false, fmt.Errorf("%w: products: %w", ErrUnexpectedResponse, err)
	}
	var best int64
	for _, r := range rows {
		// The oldest of duplicates wins, so every process picks the same one.
		if r.ID > 0 && r.SKU == sku && (best == 0 || int64(r.ID) < best) {
			best = int64(r.ID)
		}
	}
	return best, best > 0, nil
}

func (c *client) createProduct(ctx context.Context, p product) (int64, error) {
	data, err := c.do(ctx, call{method: http.MethodPost, path: pathProducts, body: p})
	if err != nil {
		return 0, err
	}
	var d struct {
		ID flexInt `json:"id"`
	}
	if json.Unmarshal(data, &d) != nil || d.ID <= 0 {
		return 0, fmt.Errorf("%w: product create returned no id: %s", ErrUnexpectedResponse, shorten(string(data), 200))
	}
	return int64(d.ID), nil
}

func (c *client) updateProduct(ctx context.Context, id int64, p product) error {
	body := map[string]any{"id": id, "name": p.Name, "price": p.Price}
	if p.SKU != "" {
		body["sku"] = p.SKU
	}
	_, err := c.do(ctx, call{method: http.MethodPut, path: pathProducts, body: body, safe: true})
	return err
}

// transactionRow is a transaction (object 46, also called invoice) as the API lists it.
type transactionRow struct {
	ID              flexInt `json:"id"`
	Status          flexInt `json:"status"`
	ContactID       flexInt `json:"contact_id"`
	ExternalOrderID string  `json:"external_order_id"`
}

// findTransactions lists the transactions whose external_order_id equals ext: GET /Transactions
// with condition [{"field":{"field":"external_order_id"},"op":"=","value":{"value":ext}}].
func (c *client) findTransactions(ctx context.Context, ext string) ([]transactionRow, error) {
	data, err := c.do(ctx, call{method: http.MethodGet, path: pathTransactions, safe: true, query: url.Values{
		"condition":  {equals("external_order_id", ext)},
		"listFields": {"id,status,contact_id,external_order_id"},
		"range":      {"50"},
	}})
	if err != nil {
		return nil, err
	}
	var rows []transactionRow
	if err := json.Unmarshal(data, &rows); err != nil {
		return nil, fmt.Errorf("%w: transactions: %w", ErrUnexpectedResponse, err)
	}
	out := rows[:0]
	for _, r := range rows {
		// Guard against a server that ignores the condition: only exact matches count.
		if r.ID > 0 && r.ExternalOrderID == ext {
			out = append(out, r)
		}
	}
	return out, nil
}

func (c *client) transactionStatus(ctx context.Context, id int64) (int64, error) {
	data, err := c.do(ctx, call{method: http.MethodGet, path: pathTransaction,
		query: url.Values{"id": {strconv.FormatInt(id, 10)}}, safe: true})
	if err != nil {
		return 0, err
	}
	var r transactionRow
	if err := json.Unmarshal(data, &r); err != nil {
		return 0, fmt.Errorf("%w: transaction %d: %w", ErrUnexpectedResponse, id, err)
	}
	return int64(r.Status), nil
}

// txResult is what processManual returned.
type txResult struct {
	TransactionID int64 `json:"transaction_id"`
	InvoiceID     int64 `json:"invoice_id"`
}

// processManual logs a purchase. It is never retried within a delivery: a failure may have
// created it, and the next delivery's lookup by external_order_id finds out.
func (c *client) processManual(ctx context.Context, t manualTransaction) (txResult, error) {
	data, err := c.do(ctx, call{method: http.MethodPost, path: pathProcessManual, body: t})
	if err != nil {
		return txResult{}, err
	}
	var d struct {
		ResultCode    flexInt `json:"result_code"`
		TransactionID flexInt `json:"transaction_id"`
		InvoiceID     flexInt `json:"invoice_id"`
		Message       string  `json:"message"`
	}
	if err := json.Unmarshal(data, &d); err != nil || (d.InvoiceID <= 0 && d.TransactionID <= 0) {
		return txResult{}, fmt.Errorf("%w: processManual returned no transaction: %s", ErrUnexpectedResponse, shorten(string(data), 300))
	}
	return txResult{TransactionID: int64(d.TransactionID), InvoiceID: int64(d.InvoiceID)}, nil
}

// refund marks the transactions with these ids refunded in full.
func (c *client) refund(ctx context.Context, ids []int64) error {
	ids, err := explicitIDs(ids)
	if err != nil {
		return err
	}
	_, err = c.do(ctx, call{method: http.MethodPut, path: pathRefund,
		body: map[string]any{"objectID": objectTransaction, "ids": ids}})
	return err
}

// tagContacts adds (or, with remove, removes) tags by name; ONTRAPORT creates a tag the first
// time its name is used.
func (c *client) tagContacts(ctx context.Context, contactIDs []int64, names []string, remove bool) error {
	ids, err := explicitIDs(contactIDs)
	if err != nil {
		return err
	}
	if len(names) == 0 {
		return nil
	}
	body := map[string]any{"objectID": objectContact, "ids": ids}
	method := http.MethodPut
	if remove {
		method = http.MethodDelete
		body["remove_names"] = names
	} else {
		body["add_names"] = names
	}
	_, err = c.do(ctx, call{method: method, path: pathTagByName, body: body, safe: true})
	return err
}
