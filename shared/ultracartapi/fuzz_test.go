package ultracartapi_test

import (
	"errors"
	"testing"

	"github.com/cartrelay/cartrelay/shared/ultracartapi"
)

func FuzzDecodePage(f *testing.F) {
	f.Add([]byte(`{"orders":[{"order_id":"A-1"},{"order_id":"A-2"}],"metadata":{"result_set":{"count":2,"limit":200,"offset":0,"more":true,"next_offset":2,"total_records":9}},"success":true}`), "orders")
	f.Add([]byte(`{"customers":null,"metadata":{}}`), "customers")
	f.Add([]byte(`{"items":{"not":"a list"}}`), "items")
	f.Add([]byte(`[1,2]`), "orders")
	f.Fuzz(func(t *testing.T, raw []byte, field string) {
		p, err := ultracartapi.DecodePage(raw, field, 40)
		if err != nil {
			if !errors.Is(err, ultracartapi.ErrBadResponse) {
				t.Fatalf("error %v is not ErrBadResponse", err)
			}
			return
		}
		for i, r := range p.Records {
			if len(r) == 0 {
				t.Fatalf("record %d is empty", i)
			}
		}
	})
}
