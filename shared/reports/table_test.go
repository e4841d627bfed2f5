package reports

import (
	"bytes"
	"strings"
	"testing"

	"github.com/cartrelay/cartrelay/shared/rollup"
)

func TestCSVSafe(t *testing.T) {
	for in, want := range map[string]string{
		`=HYPERLINK("http://evil.example","x")`: `'=HYPERLINK("http://evil.example","x")`,
		"+1-555":                                "'+1-555",
		"-cmd|' /C calc'!A0":                    "'-cmd|' /C calc'!A0",
		"@SUM(A1)":                              "'@SUM(A1)",
		"\tx":                                   "'\tx",
		"\rx":                                   "'\rx",
		"google":                                "google",
		"-12.50":                                "-12.50", // a number this package wrote
		"-":                                     "'-",
		"":                                      "",
		"(none)":                                "(none)",
	} {
		if got := CSVSafe(in); got != want {
			t.Errorf("CSVSafe(%q) = %q, want %q", in, got, want)
		}
	}
	var b bytes.Buffer
	err := WriteCSV(&b, []Table{{Title: "Attribution", Currency: "USD", Columns: []Column{{"touch", "Touch", TextColumn}, {"gross", "Gross", MoneyColumn}},
		Rows: [][]Cell{{text("=cmd()"), text("-3.00")}}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := b.String(); got != "Attribution (USD)\nTouch,Gross\n'=cmd(),-3.00\n" {
		t.Errorf("csv:\n%s", got)
	}
}

func TestDrillHandleRoundTrip(t *testing.T) {
	s := DrillSpec{Report: "revenue", List: ListOrders, Part: rollup.PartDay, Kinds: "o", Measure: "g", Without: "n",
		From: 20150, To: 20180, Gen: 3, Filter: Filter{Source: "ultracart", Currency: "USD", FirstSource: "google", Product: "A&B=C"},
		Dims: map[string]string{"model": "linear", "ts": "news letter"}}
	got, err := ParseDrill(s.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if got.Encode() != s.Encode() || got.Filter != s.Filter || got.Dims["ts"] != "news letter" || got.From != 20150 {
		t.Fatalf("round trip: %+v", got)
	}
	for _, bad := range []string{"", "!!!", "dj0y", s.Encode()[:10]} {
		if _, err := ParseDrill(bad); err == nil {
			t.Errorf("ParseDrill(%q) accepted it", bad)
		}
	}
}

// FuzzParseDrill: a handle comes from a command line or a URL, so anything may arrive.
func FuzzParseDrill(f *testing.F) {
	f.Add(DrillSpec{Report: "revenue", List: ListOrders, Part: rollup.PartDay, Kinds: "o", Measure: "g"}.Encode())
	f.Add("djE")
	f.Fuzz(func(t *testing.T, h string) {
		s, err := ParseDrill(h)
		if err != nil {
			return
		}
		if _, err := ParseDrill(s.Encode()); err != nil {
			t.Fatalf("a parsed handle does not parse again: %v", err)
		}
		if strings.ContainsAny(s.Encode(), "/+= ") {
			t.Fatal("a handle is not URL-safe")
		}
	})
}

func TestPeriods(t *testing.T) {
	d := func(s string) rollup.Date { x, _ := rollup.ParseDate(s); return x }
	got := Periods(d("2025-03-15"), d("2025-05-10"), Month)
	if len(got) != 3 || got[0].Label != "2025-03" || got[0].Whole || !got[1].Whole || got[2].End != d("2025-05-10") || got[2].Whole {
		t.Fatalf("months: %+v", got)
	}
	got = Periods(d("2025-03-05"), d("2025-03-16"), Week)
	if len(got) != 2 || got[0].Label != "2025-W10" || got[0].Start != d("2025-03-05") || !got[1].Whole || got[1].Start != d("2025-03-10") {
		t.Fatalf("weeks: %+v", got)
	}
	if got := Periods(d("2025-03-05"), d("2025-03-05"), Day); len(got) != 1 || !got[0].Whole {
		t.Fatalf("one day: %+v", got)
	}
	if i := periodOf(Periods(d("2025-01-01"), d("2025-12-31"), Month), d("2025-07-31")); i != 6 {
		t.Fatalf("July is period %d", i)
	}
}

func TestViewSource(t *testing.T) {
	for _, tc := range []struct{ url, ref, want string }{
		{"https://shop.example/tea?utm_source=Google&utm_medium=cpc", "https://www.google.com/", "google"},
		{"https://shop.example/tea", "https://www.google.com/search?q=tea", "google.com"},
		{"https://shop.example/tea", "https://shop.example/", "(internal)"},
		{"https://www.shop.example/tea", "https://shop.example/cart", "(internal)"},
		{"https://shop.example/tea", "", "(direct)"},
		{"https://shop.example/tea", "android-app://com.google.android.gm", "com.google.android.gm"},
		{"not a url", "%%%", "(direct)"},
	} {
		if got := ViewSource(tc.url, tc.ref); got != tc.want {
			t.Errorf("ViewSource(%q, %q) = %q, want %q", tc.url, tc.ref, got, tc.want)
		}
	}
}

// FuzzViewSource: the page and referrer URLs come from any browser.
func FuzzViewSource(f *testing.F) {
	f.Add("https://shop.example/?utm_source=x", "https://www.google.com/")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, u, ref string) {
		if s := ViewSource(u, ref); s == "" {
			t.Fatal("a view with no source")
		}
	})
}
