package app_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/audit"
	"github.com/cartrelay/cartrelay/shared/reports"
)

// The year of the fixture's order (paid 2024-05-02, New York time).
var fixtureYear = url.Values{"from": {"2024-01-01"}, "to": {"2024-12-31"}, "by": {"month"}}

func withKind(kind string, v url.Values) url.Values {
	out := url.Values{"kind": {kind}}
	for k, x := range v {
		out[k] = x
	}
	return out
}

var drillLink = regexp.MustCompile(`href="[^"]*/console/report/drill\?handle=([A-Za-z0-9_-]+)"`)

// TestConsoleReports: every report answers with its tables and a chart for the account's own
// orders; every number links to what it counts; the CSV holds the same numbers; a report is
// saved by name, shown on the dashboard and deleted after confirmation, each in the activity log.
func TestConsoleReports(t *testing.T) {
	e, data := newPagesEnv(t)
	d := data["acme"]

	rev := e.get("acme", "/console/report", withKind("revenue", fixtureYear))
	wantPage(t, "revenue", rev, http.StatusOK, "Orders and revenue (USD)", "2024-05", "59.98", `data-chart="chart0"`,
		`<script type="application/json" id="chart0">`, "/console/assets/echarts.", "/console/assets/charts.", "Download CSV", "Save this report")
	for _, kind := range reports.Kinds {
		resp := e.get("acme", "/console/report", withKind(kind, fixtureYear))
		wantPage(t, kind, resp, http.StatusOK, reports.KindTitle(kind), "<h2>")
		if !strings.Contains(resp.Body, "<table>") && !strings.Contains(resp.Body, "Nothing in this range") {
			t.Errorf("%s has neither a table nor a word that it is empty", kind)
		}
	}
	wantPage(t, "a filter a report cannot take", e.get("acme", "/console/report", withKind("cohorts", url.Values{"product": {"X"}})),
		http.StatusBadRequest, "cannot be filtered by", "Change the filters above")
	wantPage(t, "a range the wrong way round", e.get("acme", "/console/report", withKind("revenue", url.Values{"from": {"2024-02-01"}, "to": {"2024-01-01"}})),
		http.StatusBadRequest, "the range starts (2024-02-01) after it ends (2024-01-01)")
	wantPage(t, "no such report", e.get("acme", "/console/report", url.Values{"kind": {"nope"}}), http.StatusBadRequest, "unknown report")

	// The order behind May's count; nothing links a count of none.
	m := regexp.MustCompile(`<td>2024-05</td><td class="num"><a href="[^"]*/console/report/drill\?handle=([A-Za-z0-9_-]+)"`).FindStringSubmatch(rev.Body)
	if strings.Contains(rev.Body, `<td>2024-04</td><td class="num"><a`) {
		t.Error("April's count of no orders links to them")
	}
	if m == nil {
		t.Fatalf("the revenue report links no number to its orders:\n%s", rev.Body)
	}
	wantPage(t, "drill-down", e.get("acme", "/console/report/drill", url.Values{"handle": {m[1]}}), http.StatusOK, "DEMO-0002001", d.email)
	wantPage(t, "not a handle", e.get("acme", "/console/report/drill", url.Values{"handle": {"nope"}}), http.StatusNotFound, "does not name a number")

	csv := e.get("acme", "/console/report.csv", withKind("revenue", fixtureYear))
	if csv.StatusCode != http.StatusOK || !strings.HasPrefix(csv.Headers["content-type"], "text/csv") ||
		!strings.Contains(csv.Headers["content-disposition"], `attachment; filename="cartrelay-revenue-2024-01-01-2024-12-31.csv"`) ||
		!strings.Contains(csv.Body, "Orders and revenue (USD)") || !strings.Contains(csv.Body, "2024-05,1,59.98") {
		t.Errorf("CSV: %d %v\n%s", csv.StatusCode, csv.Headers, csv.Body)
	}

	// Saved by name, with a name a spreadsheet or a page must not run.
	name := `=cmd|"/c calc"!A1 <b>May</b>`
	form := withKind("revenue", fixtureYear)
	form.Set("name", name)
	e.clk.Advance(time.Second)
	if resp := e.post("acme", "/console/reports/save", form); resp.StatusCode != http.StatusFound || !strings.HasSuffix(resp.Headers["location"], "/console/reports") {
		t.Fatalf("save: %d %v %s", resp.StatusCode, resp.Headers, resp.Body)
	}
	dash := e.get("acme", "/console/reports", nil)
	wantPage(t, "dashboard", dash, http.StatusOK, "Saved reports", "=cmd|&#34;/c calc&#34;!A1 &lt;b&gt;May&lt;/b&gt;", "59.98", `data-chart="saved0"`)
	wantPage(t, "home links it", e.get("acme", "/console/home", nil), http.StatusOK, "&lt;b&gt;May&lt;/b&gt;", "All reports")
	if strings.Contains(dash.Body, "<b>May</b>") {
		t.Error("the dashboard writes a saved report's name as markup")
	}
	wantPage(t, "save without a name", e.post("acme", "/console/reports/save", withKind("revenue", nil)), http.StatusBadRequest, "give the report a name")
	del := url.Values{"name": {name}}
	wantPage(t, "delete asks first", e.post("acme", "/console/reports/delete", del), http.StatusOK, "Delete this saved report?", "The numbers themselves stay")
	wantPage(t, "still saved", e.get("acme", "/console/reports", nil), http.StatusOK, "&lt;b&gt;May&lt;/b&gt;")
	del.Set("confirm", "yes")
	e.clk.Advance(time.Second)
	if resp := e.post("acme", "/console/reports/delete", del); resp.StatusCode != http.StatusFound {
		t.Fatalf("delete: %d %s", resp.StatusCode, resp.Body)
	}
	wantPage(t, "deleted", e.get("acme", "/console/reports", nil), http.StatusOK, "None yet")
	wantPage(t, "home without saved reports", e.get("acme", "/console/home", nil), http.StatusOK, "Reports saved by name show here")
	wantPage(t, "deleted again", e.post("acme", "/console/reports/delete", del), http.StatusNotFound, "no saved report of that name")
	var actions []string
	for _, a := range e.auditLog("acme") {
		actions = append(actions, a.Action)
	}
	if strings.Join(actions, ",") != audit.DeleteReport+","+audit.SaveReport {
		t.Errorf("activity log: %v", actions)
	}
}

// A session for one account never reads another's numbers: the same report links show its own
// orders only, another account's saved report cannot be deleted, and a drill-down handle made
// for the other account lists nothing of it.
func TestConsoleReportsIsolation(t *testing.T) {
	e, data := newPagesEnv(t)
	b := data["bravo"]
	ctx := context.Background()
	eng := &reports.Engine{Store: e.env.Store, Accounts: e.env.Accounts, Clock: e.clk}
	if _, err := eng.Save(ctx, "bravo", "Bravo's year", reports.Params{Kind: "revenue", From: "2024-01-01", To: "2024-12-31", By: "month"}, e.clk.Now()); err != nil {
		t.Fatal(err)
	}
	theirs := e.get("bravo", "/console/report", withKind("revenue", fixtureYear))
	handles := drillLink.FindAllStringSubmatch(theirs.Body, -1)
	if theirs.StatusCode != http.StatusOK || len(handles) == 0 || !strings.Contains(theirs.Body, "59.98") {
		t.Fatalf("bravo's report: %d\n%s", theirs.StatusCode, theirs.Body)
	}
	leaks := func(what string, body string) {
		t.Helper()
		for _, leak := range []string{b.email, "BRAVO-777", "Bravo&#39;s year", "Bravo's year"} {
			if strings.Contains(body, leak) {
				t.Errorf("%s under acme's session shows %q", what, leak)
			}
		}
	}
	for _, h := range handles {
		resp := e.get("acme", "/console/report/drill", url.Values{"handle": {h[1]}})
		leaks("bravo's drill-down "+h[1], resp.Body)
	}
	for _, path := range []string{"/console/reports", "/console/report", "/console/report.csv"} {
		resp := e.get("acme", path, withKind("revenue", fixtureYear))
		leaks(path, resp.Body)
	}
	resp := e.post("acme", "/console/reports/delete", url.Values{"name": {"Bravo's year"}, "confirm": {"yes"}})
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("acme deleting bravo's saved report: %d, want 404", resp.StatusCode)
	}
	if saved, _ := eng.SavedReports(ctx, "bravo"); len(saved) != 1 {
		t.Errorf("bravo's saved reports: %+v", saved)
	}
}

// The dashboard draws every saved report, in the order they are listed, each with its own
// numbers, however many it answers at once: one report of every kind (more than it answers at a
// time) and the fixture's year twice, by month and by week.
func TestConsoleReportsDashboardDrawsEverySaved(t *testing.T) {
	e, _ := newPagesEnv(t)
	ctx := context.Background()
	eng := &reports.Engine{Store: e.env.Store, Accounts: e.env.Accounts, Clock: e.clk}
	save := func(name string, p reports.Params) {
		t.Helper()
		if _, err := eng.Save(ctx, "acme", name, p, e.clk.Now()); err != nil {
			t.Fatal(err)
		}
	}
	for _, kind := range reports.Kinds {
		save("Every "+kind, reports.Params{Kind: kind, From: "2024-01-01", To: "2024-12-31", By: "month"})
	}
	save("2024 by week", reports.Params{Kind: "revenue", From: "2024-01-01", To: "2024-12-31", By: "week"})
	saved, err := eng.SavedReports(ctx, "acme")
	if err != nil || len(saved) != len(reports.Kinds)+1 {
		t.Fatalf("saved reports: %d %v", len(saved), err)
	}
	dash := e.get("acme", "/console/reports", nil)
	wantPage(t, "dashboard", dash, http.StatusOK, "Saved reports", "59.98")
	if strings.Contains(dash.Body, "could not be read") || strings.Contains(dash.Body, "cannot be shown") {
		t.Errorf("a saved report failed on the dashboard:\n%s", dash.Body)
	}
	// Each saved report is its own article, in the listed order, with its own chart.
	articles := strings.Split(dash.Body, `<article class="saved">`)[1:]
	if len(articles) != len(saved) {
		t.Fatalf("the dashboard draws %d saved reports, want %d", len(articles), len(saved))
	}
	for i, s := range saved {
		a := articles[i]
		if !strings.Contains(a, ">"+s.Name+"<") || !strings.Contains(a, reports.KindTitle(s.Params.Kind)) {
			t.Errorf("article %d is not %q (%s):\n%s", i, s.Name, s.Params.Kind, a)
		}
	}
	weekly := articles[slices.IndexFunc(saved, func(s reports.Saved) bool { return s.Name == "2024 by week" })]
	if !strings.Contains(weekly, "59.98") || !strings.Contains(weekly, "2024-W18") {
		t.Errorf("the weekly report lacks the fixture's order in its week:\n%s", weekly)
	}
}
