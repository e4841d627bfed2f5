package ucsource_test

import (
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/cartrelay/cartrelay/shared/source"
	"github.com/cartrelay/cartrelay/shared/source/sourcetest"
	"github.com/cartrelay/cartrelay/shared/ultracart"
	"github.com/cartrelay/cartrelay/shared/ultracart/ucsource"
)

const user, pass = "uc-user", "uc-pass-1"

func basic(u, p string) map[string]string {
	return map[string]string{"authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p)),
		"content-type": "application/json"}
}

// samples are the events of every delivery in testdata that UltraCart could send.
func samples(t *testing.T) []source.Raw {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("..", "testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var out []source.Raw
	for _, p := range paths {
		if filepath.Base(p) == "mixed_delivery.json" {
			continue // holds an unknown and a broken event on purpose
		}
		raws, err := ultracart.DecodeDelivery(sourcetest.Testdata(t, filepath.Base(p)))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		for _, r := range raws {
			out = append(out, source.Raw{Name: r.Name, Payload: r.Payload, Index: r.Index})
		}
	}
	// Records of the polled affiliate list, which no webhook sends.
	polled, err := filepath.Glob(filepath.Join("..", "testdata", "affiliates", "*.json"))
	if err != nil || len(polled) == 0 {
		t.Fatalf("affiliate samples: %v", err)
	}
	for _, p := range polled {
		out = append(out, source.Raw{Name: ultracart.EventAffiliate, Payload: sourcetest.Testdata(t, filepath.Join("affiliates", filepath.Base(p)))})
	}
	return out
}

func TestContract(t *testing.T) {
	order := sourcetest.Testdata(t, "order_create.json")
	sourcetest.RunOnBothBackends(t, sourcetest.Env{
		Reg:      ucsource.Registration(),
		Settings: `{"ultracart":{"webhook_username":"` + user + `","webhook_password":"` + pass + `"}}`,
		Secret:   pass,
		Good:     sourcetest.Post(sourcetest.Testdata(t, "order_create_kitchen_sink.json"), basic(user, pass)),
		Refused: map[string]source.Delivery{
			"no credentials":      sourcetest.Post(order, map[string]string{"content-type": "application/json"}),
			"wrong password":      sourcetest.Post(order, basic(user, "nope")),
			"wrong user":          sourcetest.Post(order, basic("someone", pass)),
			"password as user":    sourcetest.Post(order, basic(pass, user)),
			"not Basic":           sourcetest.Post(order, map[string]string{"authorization": "Bearer " + pass}),
			"Basic, not base64":   sourcetest.Post(order, map[string]string{"authorization": "Basic %%%"}),
			"wrong, bad JSON too": sourcetest.Post([]byte(`{"events":[`), basic(user, "nope")),
		},
		Malformed: map[string]sourcetest.Malformed{
			"truncated JSON":                   {Delivery: sourcetest.Post([]byte(`{"events":[{"order_create":`), basic(user, pass)), Status: 400, Says: "JSON"},
			"not an event list":                {Delivery: sourcetest.Post([]byte(`"hello"`), basic(user, pass)), Status: 400, Says: "string"},
			"one broken event among good ones": {Delivery: sourcetest.Post(sourcetest.Testdata(t, "mixed_delivery.json"), basic(user, pass)), Says: "not an UltraCart event"},
		},
		Samples: samples(t),
		// UltraCart sends it; cartrelay does not interpret it.
		Unknown: source.Raw{Name: "fulfillment_hold", Payload: json.RawMessage(`{"order_id":"DEMO-1"}`)},
	})
}

func FuzzSplit(f *testing.F) {
	var seeds []source.Delivery
	for _, name := range []string{"order_create.json", "mixed_delivery.json", "auto_order_rebill.json", "customer_update.json"} {
		seeds = append(seeds, sourcetest.Post(sourcetest.Testdata(f, name), map[string]string{"content-type": "application/json"}))
	}
	sourcetest.Fuzz(f, ucsource.Registration(), seeds)
}
