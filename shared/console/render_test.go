package console

import (
	"strings"
	"testing"
)

// Text from outside (UltraCart's error messages, a merchant's settings) must reach the pages
// as text, never as markup.
func TestPagesEscapeWhatTheyShow(t *testing.T) {
	const evil = `"><script>alert(1)</script>`
	dash := renderDashboard(dashboardView{Account: evil, Connected: "broken", Problem: evil, ProblemAt: evil, ConnectURL: evil,
		Streams: []streamView{{Name: "orders", Started: true, Status: evil, LastError: evil, LastErrorAt: evil}, {Name: evil, LastError: evil}}})
	settings := renderSettings(settingsView{Account: evil, CSRF: evil, Action: evil, DashboardURL: evil,
		Sections: []sectionView{{Title: evil, Fields: []fieldView{
			{field: field{Path: evil, Label: evil, Help: evil}, Text: true, Value: evil},
			{field: field{Path: evil, Label: evil}, Bool: true, Checked: true},
			{field: field{Path: evil, Label: evil}, Secret: true, Set: true, ClearName: evil},
		}}},
		settingsState: settingsState{Problems: []string{evil}}})
	for name, page := range map[string]string{"dashboard": dash, "settings": settings} {
		if strings.Contains(page, "<script>") || strings.Contains(page, `"><script`) {
			t.Errorf("%s lets markup through:\n%s", name, page)
		}
		if !strings.Contains(page, "&#34;&gt;&lt;script&gt;") {
			t.Errorf("%s does not show the text escaped:\n%s", name, page)
		}
	}
}
