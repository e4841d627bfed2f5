package ultracartapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// Webhook is the part of UltraCart's Webhook object that cartrelay sets or reads.
type Webhook struct {
	WebhookOID         int             `json:"webhook_oid,omitempty"`
	WebhookURL         string          `json:"webhook_url"`
	MerchantID         string          `json:"merchant_id,omitempty"`
	APIVersion         string          `json:"api_version,omitempty"`
	AuthenticationType string          `json:"authentication_type,omitempty"`
	BasicUsername      string          `json:"basic_username,omitempty"`
	BasicPassword      string          `json:"basic_password,omitempty"`
	CompressEvents     bool            `json:"compress_events"`
	MaximumEvents      int             `json:"maximum_events,omitempty"`
	MaximumSize        int64           `json:"maximum_size,omitempty"`
	Disabled           bool            `json:"disabled,omitempty"`
	EventCategories    []EventCategory `json:"event_categories,omitempty"`
}

// EventCategory groups the event subscriptions of one kind of object.
type EventCategory struct {
	EventCategory string              `json:"event_category"`
	Events        []EventSubscription `json:"events"`
}

// EventSubscription subscribes to one event, with the expansion its payload carries.
type EventSubscription struct {
	EventName  string `json:"event_name"`
	Expansion  string `json:"expansion,omitempty"`
	Subscribed bool   `json:"subscribed"`
}

// Events lists every subscribed event name.
func (w Webhook) Events() []string {
	var out []string
	for _, c := range w.EventCategories {
		for _, e := range c.Events {
			if e.Subscribed {
				out = append(out, e.EventName)
			}
		}
	}
	return out
}

// ListWebhooks returns every webhook of the merchant (GET /webhook/webhooks, paged).
func (c *Client) ListWebhooks(ctx context.Context) ([]Webhook, error) {
	var out []Webhook
	for offset := 0; ; {
		params := url.Values{}
		params.Set("_limit", strconv.Itoa(MaxLimit))
		params.Set("_offset", strconv.Itoa(offset))
		raw, err := c.call(ctx, http.MethodGet, "/webhook/webhooks", params, nil)
		if err != nil {
			return nil, err
		}
		var page struct {
			Webhooks []Webhook `json:"webhooks"`
			Metadata struct {
				ResultSet *ResultSet `json:"result_set"`
			} `json:"metadata"`
		}
		if err := json.Unmarshal(raw, &page); err != nil {
			return nil, fmt.Errorf("GET /webhook/webhooks: %w: %w", ErrBadResponse, err)
		}
		out = append(out, page.Webhooks...)
		rs := page.Metadata.ResultSet
		if rs == nil || !rs.More || len(page.Webhooks) == 0 {
			return out, nil
		}
		offset = max(rs.NextOffset, offset+len(page.Webhooks))
	}
}

// InsertWebhook creates w (POST /webhook/webhooks) and returns it as UltraCart stored it.
func (c *Client) InsertWebhook(ctx context.Context, w Webhook) (Webhook, error) {
	w.WebhookOID = 0
	return c.sendWebhook(ctx, http.MethodPost, "/webhook/webhooks", w)
}

// UpdateWebhook replaces the webhook w.WebhookOID (PUT /webhook/webhooks/{oid}).
func (c *Client) UpdateWebhook(ctx context.Context, w Webhook) (Webhook, error) {
	if w.WebhookOID == 0 {
		return Webhook{}, fmt.Errorf("%w: updating a webhook needs its webhook_oid", ErrBadRequest)
	}
	return c.sendWebhook(ctx, http.MethodPut, "/webhook/webhooks/"+strconv.Itoa(w.WebhookOID), w)
}

// DeleteWebhook removes the webhook oid (DELETE /webhook/webhooks/{oid}, 204).
func (c *Client) DeleteWebhook(ctx context.Context, oid int) error {
	if oid == 0 {
		return fmt.Errorf("%w: deleting a webhook needs its webhook_oid", ErrBadRequest)
	}
	_, err := c.call(ctx, http.MethodDelete, "/webhook/webhooks/"+strconv.Itoa(oid), nil, nil)
	return err
}

func (c *Client) sendWebhook(ctx context.Context, method, path string, w Webhook) (Webhook, error) {
	if w.APIVersion == "" {
		w.APIVersion = APIVersion
	}
	body, err := json.Marshal(w)
	if err != nil {
		return Webhook{}, err
	}
	raw, err := c.call(ctx, method, path, nil, body)
	if err != nil {
		return Webhook{}, err
	}
	var resp struct {
		Webhook *Webhook `json:"webhook"`
	}
	if err := json.Unmarshal(raw, &resp); err != nil || resp.Webhook == nil {
		return Webhook{}, fmt.Errorf("%s %s: %w: no webhook in the answer", method, path, ErrBadResponse)
	}
	return *resp.Webhook, nil
}

// HubWebhook is the webhook cartrelay registers for one account: HTTP Basic with the account's
// credentials, every event ingest interprets with the expansion ingest reads (the same as the
// poller asks for), and deliveries capped at maxSize bytes so the receiver never refuses one as
// too large. Cart events carry the whole cart without an expansion.
func HubWebhook(webhookURL, username, password string, maxSize int64) Webhook {
	sub := func(exp string, names ...string) []EventSubscription {
		out := make([]EventSubscription, len(names))
		for i, n := range names {
			out[i] = EventSubscription{EventName: n, Expansion: exp, Subscribed: true}
		}
		return out
	}
	return Webhook{
		WebhookURL: webhookURL, APIVersion: APIVersion,
		AuthenticationType: "basic", BasicUsername: username, BasicPassword: password,
		MaximumSize: maxSize,
		EventCategories: []EventCategory{
			{EventCategory: "order", Events: sub(OrderExpansion, "order_create", "order_update", "order_payment_process",
				"order_stage_change", "order_refund", "order_reject", "order_delete", "order_payment_failed",
				"order_ship", "order_ship_delivered", "order_ship_expected", "order_ship_out_for_delivery")},
			{EventCategory: "auto_order", Events: sub(AutoOrderExpansion, "auto_order_create", "auto_order_rebill",
				"auto_order_decline", "auto_order_cancel", "auto_order_disable", "auto_order_update", "auto_order_preshipment")},
			{EventCategory: "customer", Events: sub("billing,shipping", "customer_create", "customer_update", "customer_delete")},
			{EventCategory: "item", Events: sub("pricing", "item_create", "item_update", "item_delete")},
			{EventCategory: "checkout", Events: sub("", "checkout_cart_abandon", "checkout_cart_send_return_email")},
		},
	}
}
