package ultracartapi

import (
	"context"
	"net/http"
)

// AffiliatesPath is UltraCart's affiliate query (AffiliateApi getAffiliatesByQuery).
const AffiliatesPath = "/affiliate/affiliates/query"

// Affiliates lists the merchant's affiliates (POST /affiliate/affiliates/query), limit (at most
// MaxLimit, UltraCart's documented maximum) from offset. UltraCart sends no affiliate webhook
// and its query has no modification date to filter on, so the whole list is read each time.
//
// The query object is sent empty, asking for everyone. UltraCart documents that a query "with
// no parameters" fails with 400, without saying whether an empty object counts: if it does,
// the error wraps ErrBadRequest and names what UltraCart said (docs/ontraport.md, Affiliates).
// The query's status filter is not used, since UltraCart does not list its values.
func (c *Client) Affiliates(ctx context.Context, limit, offset int) (Page, error) {
	return c.page(ctx, http.MethodPost, AffiliatesPath, pageParams(limit, offset, ""), []byte(`{}`), "affiliates")
}
