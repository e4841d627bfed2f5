package tcsource_test

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cartrelay/cartrelay/shared/source"
	"github.com/cartrelay/cartrelay/shared/source/sourcetest"
	"github.com/cartrelay/cartrelay/shared/thrivecart"
	"github.com/cartrelay/cartrelay/shared/thrivecart/tcsource"
)

const secret = "TESTSECRETWORD01"

var form = map[string]string{"content-type": "application/x-www-form-urlencoded"}

// samples are the webhook events of testdata and the polled transactions ThriveCart could send.
func samples(t *testing.T) []source.Raw {
	t.Helper()
	hooks, err := filepath.Glob(filepath.Join("..", "testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var out []source.Raw
	for _, p := range hooks {
		d, err := thrivecart.Decode("application/json", sourcetest.Testdata(t, filepath.Base(p)))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		payload, err := d.Payload()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, source.Raw{Name: d.Event, Payload: payload})
	}
	polled, err := filepath.Glob(filepath.Join("..", "testdata", "transactions", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range polled {
		if strings.HasPrefix(filepath.Base(p), "invalid_") {
			continue // unusable on purpose
		}
		out = append(out, source.Raw{Name: thrivecart.EventTransaction, Payload: sourcetest.Testdata(t, filepath.Join("transactions", filepath.Base(p)))})
	}
	return out
}

// unknown is an affiliate commission, which ThriveCart's account webhooks send and cartrelay
// does not interpret.
func unknown(t *testing.T) source.Raw {
	d, err := thrivecart.Decode("application/x-www-form-urlencoded", sourcetest.Testdata(t, "affiliate_commission_earned.form"))
	if err != nil {
		t.Fatal(err)
	}
	payload, err := d.Payload()
	if err != nil {
		t.Fatal(err)
	}
	return source.Raw{Name: d.Event, Payload: payload}
}

func TestContract(t *testing.T) {
	good := string(sourcetest.Testdata(t, "order_success.form"))
	noEvent := strings.Replace(good, "event=order.success&", "", 1)
	tooMany := "thrivecart_secret=" + secret + "&event=order.success&" + strings.Repeat("a[]=1&", 20_000)
	post := func(body string) source.Delivery { return sourcetest.Post([]byte(body), form) }
	oversize := post("")
	oversize.Body, oversize.Unreadable = nil, &source.Answer{Status: http.StatusRequestEntityTooLarge, Message: "over the limit"}
	sourcetest.RunOnBothBackends(t, sourcetest.Env{
		Reg:      tcsource.Registration(),
		Settings: `{"thrivecart":{"secret":"` + secret + `"}}`,
		Secret:   secret,
		Good:     post(good),
		Refused: map[string]source.Delivery{
			"wrong secret word":                post(strings.Replace(good, "thrivecart_secret="+secret, "thrivecart_secret=guess", 1)),
			"no secret word":                   post(strings.Replace(good, "thrivecart_secret=", "x=", 1)),
			"a prefix of the secret word":      post(strings.Replace(good, "thrivecart_secret="+secret, "thrivecart_secret="+secret[:6], 1)),
			"wrong secret, over field limit":   post(strings.Replace(tooMany, secret, "guess", 1)),
			"invalid JSON":                     sourcetest.Post([]byte(`{"event":"order.success","thrivecart_secret":"`+secret+`",`), map[string]string{"content-type": "application/json"}),
			"a body over the size cap":         oversize,
			"the secret word in a header only": sourcetest.Post([]byte(strings.Replace(good, "thrivecart_secret=", "x=", 1)), map[string]string{"content-type": form["content-type"], "thrivecart_secret": secret}),
		},
		Malformed: map[string]sourcetest.Malformed{
			"no event":             {Delivery: post(noEvent), Status: 400, Says: `no "event" field`},
			"over the field limit": {Delivery: post(tooMany), Status: 400, Says: "more than 10000 fields"},
		},
		Samples: samples(t),
		Unknown: unknown(t),
	})
}

func FuzzSplit(f *testing.F) {
	var seeds []source.Delivery
	for _, name := range []string{"order_success.form", "order_refund_partial.json", "cart_abandoned.form", "order_subscription_payment.json"} {
		seeds = append(seeds, sourcetest.Post(sourcetest.Testdata(f, name), form))
	}
	sourcetest.Fuzz(f, tcsource.Registration(), seeds)
}
