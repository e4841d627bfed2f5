package iterable

import (
	"encoding/base64"
	"testing"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
)

// FuzzReadTrackRequest: whatever a browser posts, the tracking endpoint either refuses it or
// keeps a request within its limits.
func FuzzReadTrackRequest(f *testing.F) {
	f.Add(`{"visitor":"b7f3c2a1d4e5f60718293a4b5c6d7e8f","url":"https://shop.example.com/a","title":"A","referrer":"https://x.example/"}`, false)
	f.Add(`{"visitor":"b7f3c2a1d4e5f60718293a4b5c6d7e8f","order":{"id":" DEMO-1 ","email":"Ann@Example.com"}}`, false)
	f.Add(`{"visitor":"b7f3c2a1d4e5f60718293a4b5c6d7e8f","url":"https://a/","identity":"v1.1.YQ.00","email":"x@y.z"}`, true)
	f.Add(`{"visitor":"b7f3c2a1d4e5f60718293a4b5c6d7e8f","cart":{"currency":"USD","items":[{"sku":"A","price":1,"quantity":1}]}}`, false)
	f.Fuzz(func(t *testing.T, body string, b64 bool) {
		req := events.APIGatewayV2HTTPRequest{Body: body}
		if b64 {
			req.Body, req.IsBase64Encoded = base64.StdEncoding.EncodeToString([]byte(body)), true
		}
		r, resp, ok := readTrackRequest(req)
		if !ok {
			if resp.StatusCode < 400 || resp.StatusCode > 499 {
				t.Fatalf("refused with %d", resp.StatusCode)
			}
			return
		}
		switch {
		case len(body) > MaxTrackBodyBytes:
			t.Fatalf("a %d-byte body was read", len(body))
		case !validVisitor(r.Visitor), r.Email != "", r.URL == "" && r.Order == nil && r.cart == nil, len(r.URL) > maxTrackURLLen:
			t.Fatalf("accepted %+v", r)
		case len(r.Title) > maxTitleLen || (utf8.ValidString(body) && !utf8.ValidString(r.Title)):
			t.Fatalf("title kept: %q", r.Title)
		case r.Order != nil && (r.Order.ID == "" || len(r.Order.ID) > maxOrderIDLen || r.Order.Email == ""):
			t.Fatalf("order claim kept: %+v", r.Order)
		}
	})
}
