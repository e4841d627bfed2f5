package dynamo

import (
	"encoding/base64"
	"errors"
	"testing"

	"github.com/cartrelay/cartrelay/shared/store"
)

var s = S

func TestCursorRoundTrip(t *testing.T) {
	cases := []struct {
		name string
		q    store.Query
		key  Item
	}{
		{"table", store.Query{PK: "A#1#E#zoë@example.com"},
			Item{AttrPK: s("A#1#E#zoë@example.com"), AttrSK: s("O#ultracart#1/2 ?&=")}},
		{"gsi1", store.Query{Index: store.GSI1, PK: "O#1#ultracart#7"},
			Item{AttrPK: s("A#1#E#a"), AttrSK: s("O#7"), AttrGSI1PK: s("O#1#ultracart#7"), AttrGSI1SK: s("-")}},
		{"gsi2", store.Query{Index: store.GSI2, PK: "A#1#M#2040-01"},
			Item{AttrPK: s("A#1#E#a"), AttrSK: s("O#7"), AttrGSI2PK: s("A#1#M#2040-01"), AttrGSI2SK: s("2040-01-02T03:04:05Z#7")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := encodeCursor(tc.key)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := base64.RawURLEncoding.DecodeString(c); err != nil {
				t.Fatalf("cursor %q is not URL-safe base64: %v", c, err)
			}
			tc.q.Cursor = c
			got, err := decodeCursor(tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(tc.key) {
				t.Fatalf("decoded %v, want %v", got, tc.key)
			}
		})
	}
}

func TestCursorRejectsForeignOrBroken(t *testing.T) {
	enc := func(key Item) string {
		c, err := encodeCursor(key)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	table := enc(Item{AttrPK: s("P"), AttrSK: s("S")})
	gsi1 := enc(Item{AttrPK: s("P"), AttrSK: s("S"), AttrGSI1PK: s("G"), AttrGSI1SK: s("1")})
	raw := func(v string) string { return base64.RawURLEncoding.EncodeToString([]byte(v)) }
	cases := []struct {
		name string
		q    store.Query
	}{
		{"not base64", store.Query{PK: "P", Cursor: "%%%"}},
		{"padded base64", store.Query{PK: "P", Cursor: table + "=="}},
		{"not JSON", store.Query{PK: "P", Cursor: raw("pk=P")}},
		{"JSON of another shape", store.Query{PK: "P", Cursor: raw(`["P","S"]`)}},
		{"non-string value", store.Query{PK: "P", Cursor: raw(`{"pk":"P","sk":1}`)}},
		{"missing sk", store.Query{PK: "P", Cursor: raw(`{"pk":"P"}`)}},
		{"empty sk", store.Query{PK: "P", Cursor: raw(`{"pk":"P","sk":""}`)}},
		{"extra attribute", store.Query{PK: "P", Cursor: raw(`{"pk":"P","sk":"S","data":"x"}`)}},
		{"another partition", store.Query{PK: "Q", Cursor: table}},
		{"table cursor on gsi1", store.Query{Index: store.GSI1, PK: "P", Cursor: table}},
		{"gsi1 cursor on the table", store.Query{PK: "P", Cursor: gsi1}},
		{"gsi1 cursor on gsi2", store.Query{Index: store.GSI2, PK: "G", Cursor: gsi1}},
		{"gsi1 cursor on another gsi1 partition", store.Query{Index: store.GSI1, PK: "H", Cursor: gsi1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodeCursor(tc.q); !errors.Is(err, store.ErrInvalid) {
				t.Fatalf("got %v, want an error matching store.ErrInvalid", err)
			}
		})
	}
	if _, err := decodeCursor(store.Query{Index: store.GSI1, PK: "G", Cursor: gsi1}); err != nil {
		t.Fatalf("the matching query rejected its own cursor: %v", err)
	}
}

func TestCursorRefusesNonStringKeys(t *testing.T) {
	_, err := encodeCursor(Item{AttrPK: s("P"), AttrSK: N(1)})
	if err == nil {
		t.Fatal("encoded a key with a number attribute")
	}
}
