package reports

import (
	"fmt"
	"strings"

	"github.com/cartrelay/cartrelay/shared/rollup"
)

// touchFields says which fields of a touch make a report's rows.
type touchFields int

const (
	bySource touchFields = iota + 1
	bySourceMedium
	bySourceMediumCampaign
)

func parseTouchBy(s string) (touchFields, error) {
	switch strings.ToLower(strings.ReplaceAll(s, " ", "")) {
	case "source":
		return bySource, nil
	case "source/medium", "medium":
		return bySourceMedium, nil
	case "", "source/medium/campaign", "campaign":
		return bySourceMediumCampaign, nil
	}
	return 0, fmt.Errorf("touch fields %q: use source, source/medium or source/medium/campaign", s)
}

// key keeps the fields a row is made of.
func (f touchFields) key(t rollup.Touch) rollup.Touch {
	switch f {
	case bySource:
		return rollup.Touch{Source: t.Source}
	case bySourceMedium:
		return rollup.Touch{Source: t.Source, Medium: t.Medium}
	}
	return t
}

// touchLabel is how a row names its touch: "google / cpc / spring", or "(none)" for no touch.
func touchLabel(t rollup.Touch) string {
	parts := []string{t.Source}
	if t.Medium != "" {
		parts = append(parts, t.Medium)
	}
	if t.Campaign != "" {
		parts = append(parts, t.Campaign)
	}
	if t.Source == rollup.None && (t.Medium == "" || t.Medium == rollup.None) && (t.Campaign == "" || t.Campaign == rollup.None) {
		return rollup.None
	}
	return strings.Join(parts, " / ")
}

// TouchRow names a touch: its fields as reports group them ("" for a field not grouped on).
type TouchRow struct {
	Source   string `json:"utm_source"`
	Medium   string `json:"utm_medium,omitempty"`
	Campaign string `json:"utm_campaign,omitempty"`
	Label    string `json:"label"`
}

func touchRow(t rollup.Touch) TouchRow {
	return TouchRow{Source: t.Source, Medium: t.Medium, Campaign: t.Campaign, Label: touchLabel(t)}
}

// dims is the drill-down selection of a touch row under a model.
func touchDims(t rollup.Touch, model Model) map[string]string {
	d := map[string]string{"model": string(model), "ts": t.Source}
	if t.Medium != "" {
		d["tm"] = t.Medium
	}
	if t.Campaign != "" {
		d["tc"] = t.Campaign
	}
	return d
}

// unsupported refuses the filters a report cannot apply, naming them and why.
func unsupported(report string, f Filter, why string, fields ...string) error {
	var bad []string
	for _, name := range fields {
		v := map[string]string{"product": f.Product, "last_source": f.LastSource, "last_medium": f.LastMedium,
			"last_campaign": f.LastCampaign, "source": f.Source, "currency": f.Currency,
			"first_source": f.FirstSource, "first_medium": f.FirstMedium, "first_campaign": f.FirstCampaign}[name]
		if v != "" {
			bad = append(bad, "--"+strings.ReplaceAll(name, "_", "-"))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return &ParamError{"filter", fmt.Sprintf("the %s report cannot be filtered by %s: %s", report, strings.Join(bad, ", "), why)}
}
