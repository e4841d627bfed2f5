package accounts

import (
	"context"
	"errors"
	"testing"

	"github.com/cartrelay/cartrelay/shared/store"
)

func TestPutDoesNotCreateStoreIDs(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.repo.Put(ctx, "uc-acme", []byte(`{}`)); !errors.Is(err, ErrReservedID) {
		t.Fatalf("Put created uc-acme: %v", err)
	}
	if _, err := e.repo.Get(ctx, "uc-acme"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("uc-acme exists after a refused put: %v", err)
	}
	if _, err := e.repo.PutForStore(ctx, "uc-acme", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	// Once the connect flow made it, the operator may change its settings.
	if a, err := e.repo.Put(ctx, "uc-acme", []byte(`{"mail":{"enabled":true}}`)); err != nil || !a.Flag("mail.enabled") {
		t.Fatalf("update of uc-acme: %+v, %v", a, err)
	}
	if _, err := e.repo.Put(ctx, "ucacme", []byte(`{}`)); err != nil {
		t.Errorf("an id merely starting with uc: %v", err)
	}
}

func TestBindOneStoreToOneAccount(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.repo.Binding(ctx, "uc-acme"); !errors.Is(err, ErrNotBound) {
		t.Fatalf("unbound: %v", err)
	}
	if err := e.repo.Bind(ctx, Binding{Account: "uc-acme", MerchantID: "acme "}); err != nil {
		t.Fatal(err)
	}
	b, err := e.repo.BindingOfMerchant(ctx, "ACME")
	if err != nil || b.Account != "uc-acme" || b.MerchantID != "acme" || !b.BoundAt.Equal(t0) {
		t.Fatalf("binding of ACME: %+v, %v", b, err)
	}
	if err := e.repo.Bind(ctx, Binding{Account: "uc-acme", MerchantID: "OTHER"}); !errors.Is(err, ErrAccountBound) {
		t.Errorf("rebinding the account: %v", err)
	}
	if err := e.repo.Bind(ctx, Binding{Account: "uc-acme-2", MerchantID: "Acme"}); !errors.Is(err, ErrStoreBound) {
		t.Errorf("binding the store twice: %v", err)
	}
	if _, err := e.repo.Binding(ctx, "uc-acme-2"); !errors.Is(err, ErrNotBound) {
		t.Errorf("a refused binding was written: %v", err)
	}
	if _, err := e.repo.BindingOfMerchant(ctx, "OTHER"); !errors.Is(err, ErrNotBound) {
		t.Errorf("a refused binding named its merchant: %v", err)
	}
}

func TestBindWithAnExtraWrite(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	used := store.Key{PK: "TEST#token", SK: "-"}
	if err := e.st.Write(ctx, store.PutItem(store.Item{PK: used.PK, SK: used.SK, Version: 1, Data: []byte(`{}`)}, store.NotExists)); err != nil {
		t.Fatal(err)
	}
	// The extra write fails: nothing of the binding is written, and the error says it was not
	// the binding.
	err := e.repo.Bind(ctx, Binding{Account: "uc-a"}, store.PutItem(store.Item{PK: used.PK, SK: used.SK, Version: 2, Data: []byte(`{}`)}, store.NotExists))
	if !errors.Is(err, store.ErrConditionFailed) || errors.Is(err, ErrAccountBound) || errors.Is(err, ErrStoreBound) {
		t.Fatalf("got %v", err)
	}
	if _, err := e.repo.Binding(ctx, "uc-a"); !errors.Is(err, ErrNotBound) {
		t.Errorf("bound despite the failed write: %v", err)
	}
	if err := e.repo.Bind(ctx, Binding{Account: "uc-a"}, store.PutIfVersion(store.Item{PK: used.PK, SK: used.SK, Version: 2, Data: []byte(`{}`)}, 1)); err != nil {
		t.Fatal(err)
	}
}

func TestNameMerchantLater(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.repo.Bind(ctx, Binding{Account: "uc-a"}); err != nil {
		t.Fatal(err)
	}
	if err := e.repo.Bind(ctx, Binding{Account: "uc-b", MerchantID: "BBB"}); err != nil {
		t.Fatal(err)
	}
	if err := e.repo.NameMerchant(ctx, "uc-a", "BBB"); !errors.Is(err, ErrStoreBound) {
		t.Errorf("naming another account's merchant: %v", err)
	}
	if err := e.repo.NameMerchant(ctx, "uc-a", "AAA"); err != nil {
		t.Fatal(err)
	}
	if b, err := e.repo.BindingOfMerchant(ctx, "aaa"); err != nil || b.Account != "uc-a" {
		t.Fatalf("binding of AAA: %+v, %v", b, err)
	}
	if err := e.repo.NameMerchant(ctx, "uc-a", "AAA"); err != nil {
		t.Errorf("naming the same merchant again: %v", err)
	}
	if err := e.repo.NameMerchant(ctx, "uc-a", "CCC"); !errors.Is(err, ErrAccountBound) {
		t.Errorf("renaming a named binding: %v", err)
	}
}
