package dynamo

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/store"
)

func TestConditionExpressions(t *testing.T) {
	k := store.Key{PK: "P", SK: "S"}
	cases := []struct {
		w        store.Write
		expr     string
		hasValue []string
	}{
		{store.PutItem(store.Item{PK: "P", SK: "S"}, store.Always), "", nil},
		{store.DeleteKey(k, store.NotExists), "attribute_not_exists(#pk) OR #ttl <= :now", []string{":now"}},
		{store.Check(k, store.Exists, 0), "attribute_exists(#pk) AND (attribute_not_exists(#ttl) OR #ttl > :now)", []string{":now"}},
		{store.Check(k, store.VersionEquals, 7), "attribute_exists(#pk) AND (attribute_not_exists(#ttl) OR #ttl > :now) AND #ver = :expect", []string{":now", ":expect"}},
	}
	for _, tc := range cases {
		t.Run(tc.w.Cond.String(), func(t *testing.T) {
			c := condition(tc.w, startOf2040())
			if tc.expr == "" {
				if c.ConditionExpression != "" || c.ExpressionAttributeNames != nil || c.ExpressionAttributeValues != nil {
					t.Fatalf("unconditional write got %+v", c)
				}
				return
			}
			if c.ConditionExpression != tc.expr {
				t.Fatalf("expression %q, want %q", c.ConditionExpression, tc.expr)
			}
			// DynamoDB rejects placeholders the expression does not use, so there must be
			// exactly the ones it does.
			values := c.ExpressionAttributeValues
			if len(values) != len(tc.hasValue) {
				t.Fatalf("values %v, want %v", values, tc.hasValue)
			}
			if !values[":now"].Equal(N(2208988800)) {
				t.Fatalf(":now is %+v", values[":now"])
			}
			if tc.w.Cond == store.VersionEquals && !values[":expect"].Equal(N(7)) {
				t.Fatalf(":expect is %+v", values[":expect"])
			}
		})
	}
}

func startOf2040() time.Time { return time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC) }

func TestItemEncoding(t *testing.T) {
	full := store.Item{
		PK: "P", SK: "S", GSI1PK: "G1", GSI1SK: "1", GSI2PK: "G2", GSI2SK: "2",
		ExpiresAt: startOf2040(), Version: 3, Data: []byte{0, 1, 2},
	}
	m := encodeItem(full)
	if len(m) != 9 {
		t.Fatalf("full item has %d attributes, want 9: %v", len(m), m)
	}
	if n := m[AttrTTL]; n.Kind != KindN || n.Text != "2208988800" {
		t.Fatalf("ttl %+v, want unix seconds", n)
	}
	back, err := decodeItem(m)
	if err != nil {
		t.Fatal(err)
	}
	if back.PK != full.PK || back.GSI2SK != full.GSI2SK || !back.ExpiresAt.Equal(full.ExpiresAt) || back.Version != 3 || !bytes.Equal(back.Data, full.Data) {
		t.Fatalf("decoded %+v", back)
	}

	// Unset GSI keys, expiry and data are left out, which keeps the GSIs sparse and TTL off.
	bare := encodeItem(store.Item{PK: "P", SK: "S"})
	for _, a := range []string{AttrGSI1PK, AttrGSI1SK, AttrGSI2PK, AttrGSI2SK, AttrTTL, AttrData} {
		if _, ok := bare[a]; ok {
			t.Errorf("bare item carries %s", a)
		}
	}
}

func TestItemDecodingRejectsForeignTypes(t *testing.T) {
	base := func() Item { return encodeItem(store.Item{PK: "P", SK: "S"}) }
	cases := map[string]Value{
		AttrSK:      {Kind: KindN, Text: "1"},
		AttrVersion: S("1"),
		AttrTTL:     {Kind: KindN, Text: "1.5"},
		AttrData:    S("{}"),
	}
	for attr, v := range cases {
		m := base()
		m[attr] = v
		if _, err := decodeItem(m); err == nil {
			t.Errorf("decoded an item whose %s is %+v", attr, v)
		}
	}
}

func TestExpiryRoundsUp(t *testing.T) {
	base := startOf2040()
	cases := []struct {
		in   time.Time
		want int64
		ok   bool
	}{
		{time.Time{}, 0, false},
		{base, base.Unix(), true},
		{base.Add(time.Nanosecond), base.Unix() + 1, true},
		{base.Add(999 * time.Millisecond), base.Unix() + 1, true},
		{time.Unix(-10, 500), -9, true},
	}
	for _, tc := range cases {
		got, ok := expirySeconds(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("expirySeconds(%s) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// TestLargeDataIsStoredDeflated: data from deflateAbove bytes up goes to DynamoDB compressed
// (a write unit is a kilobyte of item) and comes back as it was; small or incompressible data
// is stored as it is.
func TestLargeDataIsStoredDeflated(t *testing.T) {
	order := bytes.Repeat([]byte(`{"sku":"TEA-SAMPLER","quantity":2,"unit_price":"19.99","currency":"USD"},`), 40)
	random := make([]byte, 2048)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	for _, tc := range []struct {
		name     string
		data     []byte
		deflated bool
	}{
		{"small", []byte(`{"id":1}`), false},
		{"order", order, true},
		{"incompressible", random, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := encodeItem(store.Item{PK: "P", SK: "S", Data: tc.data})
			z, deflated := m[AttrDataDeflated]
			_, plain := m[AttrData]
			if deflated != tc.deflated || plain == tc.deflated {
				t.Fatalf("deflated %v, plain %v", deflated, plain)
			}
			if deflated && len(z.Bytes) > len(tc.data)/3 {
				t.Errorf("%d bytes deflated to %d", len(tc.data), len(z.Bytes))
			}
			it, err := decodeItem(m)
			if err != nil || !bytes.Equal(it.Data, tc.data) {
				t.Fatalf("round trip: %v, %d bytes back of %d", err, len(it.Data), len(tc.data))
			}
		})
	}
	// Corrupt compressed data is an error naming the item, not garbage.
	m := encodeItem(store.Item{PK: "P", SK: "S", Data: order})
	m[AttrDataDeflated] = B([]byte("not deflate"))
	if _, err := decodeItem(m); err == nil {
		t.Fatal("corrupt deflated data decoded")
	}
}
