package ontraport_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/cartrelay/cartrelay/shared/ontraport"
	"github.com/cartrelay/cartrelay/shared/ontraport/ontraportfake"
)

func TestCheckKey(t *testing.T) {
	fake := ontraportfake.New(ontraportfake.Options{AppID: "2_123", APIKey: "op-good-key"})
	defer fake.Close()
	ctx := context.Background()
	if err := ontraport.CheckKey(ctx, nil, fake.URL, "2_123", "op-good-key"); err != nil {
		t.Fatalf("good key: %v", err)
	}
	for name, c := range map[string][2]string{"wrong key": {"2_123", "op-bad-key"}, "wrong app id": {"2_999", "op-good-key"}, "no key": {"2_123", ""}} {
		if err := ontraport.CheckKey(ctx, nil, fake.URL, c[0], c[1]); !errors.Is(err, ontraport.ErrKeyRefused) {
			t.Errorf("%s: %v, want ErrKeyRefused", name, err)
		}
	}
	// A failure of ONTRAPORT itself is not a refused key: the caller says "try again".
	fake.SetFault(func(ontraportfake.Request) ontraportfake.Fault { return ontraportfake.ServerError })
	err := ontraport.CheckKey(ctx, nil, fake.URL, "2_123", "op-good-key")
	if err == nil || errors.Is(err, ontraport.ErrKeyRefused) {
		t.Errorf("ONTRAPORT failing: %v, want an error that is not ErrKeyRefused", err)
	}
	var ae *ontraport.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusInternalServerError {
		t.Errorf("ONTRAPORT failing: %v, want its 500", err)
	}
	if err := ontraport.CheckKey(ctx, nil, "http://ontraport.example.com/1", "2_123", "k"); err == nil {
		t.Error("a plain-http base URL was used")
	}
}
