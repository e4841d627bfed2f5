package ultracartapi

import (
	"context"
	"net/http"
	"time"
)

// AutoOrderExpansion asks for an auto order's items and its original order, as ingest reads them.
const AutoOrderExpansion = "items,original_order,original_order.billing,original_order.item,original_order.summary"

// CustomerExpansion asks for the addresses ingest reads a customer's name, address and phone from.
const CustomerExpansion = "billing,shipping"

// ItemExpansion asks for the price, the storefront content and the images ingest reads.
const ItemExpansion = "content,content.multimedia,pricing"

// SortByModified is the _sort that lists customers and items oldest change first. The '+' must
// reach UltraCart URL-encoded, which url.Values does.
const SortByModified = "+last_modified_dts"

// AutoOrdersSince lists auto orders created or modified since since (GET
// /auto_order/auto_orders); a zero since lists them all. UltraCart's auto order carries no
// modification time to sort on, so the page order is UltraCart's own.
func (c *Client) AutoOrdersSince(ctx context.Context, since time.Time, limit, offset int) (Page, error) {
	return c.list(ctx, "/auto_order/auto_orders", "auto_orders", AutoOrderExpansion, "", since, limit, offset)
}

// CustomersSince lists customers created or modified since since, oldest change first (GET
// /customer/customers); a zero since lists them all.
func (c *Client) CustomersSince(ctx context.Context, since time.Time, limit, offset int) (Page, error) {
	return c.list(ctx, "/customer/customers", "customers", CustomerExpansion, SortByModified, since, limit, offset)
}

// ItemsSince lists items created or modified since since, oldest change first (GET /item/items);
// a zero since lists them all. UltraCart allows pages of 2,000 items, but MaxLimit keeps a page
// within what one ingest batch and one poller's memory are sized for.
func (c *Client) ItemsSince(ctx context.Context, since time.Time, limit, offset int) (Page, error) {
	return c.list(ctx, "/item/items", "items", ItemExpansion, SortByModified, since, limit, offset)
}

func (c *Client) list(ctx context.Context, path, field, expand, sort string, since time.Time, limit, offset int) (Page, error) {
	params := pageParams(limit, offset, expand)
	if !since.IsZero() {
		params.Set("_since", formatTime(since))
	}
	if sort != "" {
		params.Set("_sort", sort)
	}
	return c.page(ctx, http.MethodGet, path, params, nil, field)
}
