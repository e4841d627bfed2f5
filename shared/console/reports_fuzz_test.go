package console

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/cartrelay/cartrelay/shared/reports"
)

// A report's options come from a URL: read and written back, they are the same options; and a
// chart made of any cell texts is JSON that cannot end the script element it sits in.
func FuzzReportParams(f *testing.F) {
	f.Add("kind=revenue&from=2024-01-01&to=2024-12-31&by=month", "2024-05", "59.98")
	f.Add("kind=attribution&first_campaign=%3DHYPERLINK(%22x%22)&source=ultracart", "</script><script>alert(1)</script>", "1e308")
	f.Add("kind=cohorts&months=9999&cohort=x&kind=products", "", "NaN")
	f.Fuzz(func(t *testing.T, query, label, value string) {
		v, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		p := paramsOf(v)
		if again := paramsOf(values(p)); again != p {
			t.Fatalf("%q: %+v read back as %+v", query, p, again)
		}
		tb := reports.Table{Title: label, Columns: []reports.Column{{Key: "period", Label: label, Type: reports.TextColumn},
			{Key: "gross", Label: value, Type: reports.MoneyColumn}}, Rows: [][]reports.Cell{{{Text: label}, {Text: value}}}, Chart: []string{"gross"}}
		out := chartOption(tb)
		if out == nil {
			t.Fatalf("no chart for %q %q", label, value)
		}
		if !json.Valid(out) || strings.Contains(string(out), "<") {
			t.Fatalf("chart option %s", out)
		}
	})
}
