package reports

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/cartrelay/cartrelay/shared/rollup"
)

// Kinds are the reports, in the order menus list them.
var Kinds = []string{"revenue", "acquisition", "attribution", "cohorts", "subscriptions", "products", "engagement"}

// KindTitle is a report's name for people.
func KindTitle(kind string) string {
	switch kind {
	case "revenue":
		return "Orders and revenue"
	case "acquisition":
		return "Acquisition"
	case "attribution":
		return "Attribution"
	case "cohorts":
		return "Cohorts and lifetime value"
	case "subscriptions":
		return "Subscriptions"
	case "products":
		return "Products"
	case "engagement":
		return "Engagement"
	}
	return kind
}

// Params are a report's options as a person gives them (the CLI's flags, the console's form), all
// text: the kind, the local date range, the grain, the attribution model and touch fields, the
// cohort view and horizon, and the filters. Empty means the default. A saved report is its
// Params.
type Params struct {
	Kind   string `json:"kind"`
	From   string `json:"from,omitempty"`
	To     string `json:"to,omitempty"`
	By     string `json:"by,omitempty"`
	Model  string `json:"model,omitempty"`
	Touch  string `json:"touch,omitempty"`
	Months string `json:"months,omitempty"`
	Cohort string `json:"cohort,omitempty"`
	Filter Filter `json:"filter"`
}

// ParamError is a report option that cannot be used; Field names it as Params does (from, by,
// months, ...), so the CLI can name its flag and the console its form field.
type ParamError struct {
	Field string
	Msg   string
}

// Error is Msg, which names the option in words both interfaces share.
func (e *ParamError) Error() string { return e.Msg }

// Resolve turns p into a query for account; the default range is the last 30 days in the
// account's time zone (the last 12 months for cohorts).
func (e *Engine) Resolve(ctx context.Context, account string, p Params) (Query, error) {
	if p.Kind == "orders" {
		p.Kind = "revenue"
	}
	if !knownKind(p.Kind) {
		return Query{}, &ParamError{"kind", fmt.Sprintf("unknown report %q; the reports are %s", p.Kind, strings.Join(Kinds, ", "))}
	}
	q := Query{Account: account, Filter: p.Filter, TouchBy: p.Touch}
	var err error
	if q.Grain, err = ParseGrain(p.By); err != nil {
		return q, &ParamError{"by", "the grain: " + err.Error()}
	}
	if q.Model, err = ParseModel(p.Model); err != nil {
		return q, &ParamError{"model", "the model: " + err.Error()}
	}
	if p.Months != "" {
		if q.Horizon, err = strconv.Atoi(p.Months); err != nil || q.Horizon < 1 || q.Horizon > 240 {
			return q, &ParamError{"months", fmt.Sprintf("the months since a cohort's month must be a whole number from 1 to 240, got %q", p.Months)}
		}
	}
	switch p.Cohort {
	case "", ByFirstOrder, ByFirstSeen:
	default:
		return q, &ParamError{"cohort", fmt.Sprintf("the cohort view %q: use %s or %s", p.Cohort, ByFirstOrder, ByFirstSeen)}
	}
	today, err := e.Today(ctx, account)
	if err != nil {
		return q, err
	}
	q.To, q.From = today, today-29
	if p.Kind == "cohorts" {
		q.From = (today.Month() - 11).First()
	}
	if p.To != "" {
		if q.To, err = rollup.ParseDate(p.To); err != nil {
			return q, &ParamError{"to", "the end of the range: " + err.Error()}
		}
	}
	if p.From != "" {
		if q.From, err = rollup.ParseDate(p.From); err != nil {
			return q, &ParamError{"from", "the start of the range: " + err.Error()}
		}
	}
	return q, q.check()
}

func knownKind(kind string) bool {
	for _, k := range Kinds {
		if k == kind {
			return true
		}
	}
	return false
}

// Run answers the report p names for account.
func (e *Engine) Run(ctx context.Context, account string, p Params) (Tabler, Query, error) {
	q, err := e.Resolve(ctx, account, p)
	if err != nil {
		return nil, q, err
	}
	var t Tabler
	switch p.Kind {
	case "revenue", "orders":
		t, err = e.Revenue(ctx, q)
	case "acquisition":
		t, err = e.Acquisition(ctx, q)
	case "attribution":
		t, err = e.Attribution(ctx, q)
	case "cohorts":
		t, err = e.Cohorts(ctx, q, p.Cohort)
	case "subscriptions":
		t, err = e.Subscriptions(ctx, q)
	case "products":
		t, err = e.Products(ctx, q)
	case "engagement":
		t, err = e.Engagement(ctx, q)
	}
	return t, q, err
}
