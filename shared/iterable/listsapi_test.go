package iterable_test

import (
	"context"
	"errors"
	"testing"

	"github.com/cartrelay/cartrelay/shared/iterable"
	"github.com/cartrelay/cartrelay/shared/iterable/iterablefake"
)

func TestLists(t *testing.T) {
	fake, err := iterablefake.New(iterablefake.Options{APIKey: testKey, SpecPath: specPath(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	ctx := context.Background()
	if got, err := iterable.Lists(ctx, nil, fake.URL, testKey); err != nil || len(got) != 0 {
		t.Fatalf("no lists yet: %v %v", got, err)
	}
	news := fake.AddList("Newsletter", "Standard")
	buyers := fake.AddList("buyers", "Dynamic")
	got, err := iterable.Lists(ctx, nil, fake.URL, testKey)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != buyers || got[0].ListType != "Dynamic" || got[1].ID != news || got[1].Name != "Newsletter" || got[1].CreatedAt == 0 {
		t.Errorf("lists %+v, want buyers then Newsletter with their ids, types and creation times", got)
	}
	if _, err := iterable.Lists(ctx, nil, fake.URL, "not-the-key"); !errors.Is(err, iterable.ErrKeyRefused) {
		t.Errorf("wrong key: %v, want ErrKeyRefused", err)
	}
	fake.Inject(iterablefake.Fault{Path: "/api/lists", Status: 503})
	if _, err := iterable.Lists(ctx, nil, fake.URL, testKey); err == nil || errors.Is(err, iterable.ErrKeyRefused) {
		t.Errorf("Iterable failing: %v, want an error that is not ErrKeyRefused", err)
	}
}

func TestBaseURLFor(t *testing.T) {
	for _, c := range []struct{ base, dc, want string }{
		{"", "", iterable.DefaultBaseURL},
		{"", "EU", iterable.EUBaseURL},
		{iterable.DefaultBaseURL + "/", "eu", iterable.EUBaseURL},
		{"https://proxy.example.com", "eu", "https://proxy.example.com"},
	} {
		if got := iterable.BaseURLFor(c.base, c.dc); got != c.want {
			t.Errorf("BaseURLFor(%q, %q) = %q, want %q", c.base, c.dc, got, c.want)
		}
	}
}
