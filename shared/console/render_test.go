package console

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/audit"
	"github.com/cartrelay/cartrelay/shared/deliver"
	"github.com/cartrelay/cartrelay/shared/history"
)

// Text from outside (a cart's event, a vendor's answer, a merchant's settings, a contact's
// name) must reach the pages as text, never as markup.
func TestPagesEscapeWhatTheyShow(t *testing.T) {
	const evil = `"><script>alert(1)</script>`
	c, err := New(Deps{PublicBaseURL: "https://hub.example.com"}, strings.Repeat("k", 32))
	if err != nil {
		t.Fatal(err)
	}
	p := &pageCtx{ctx: context.Background(), c: c, sess: Session{Account: evil, token: "t"}, req: Request{Query: url.Values{"q": {evil}}, SourceIP: evil}}
	at := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	var b strings.Builder
	p.streamTable(&b, evil, []streamView{{Name: "orders", Started: true, Status: evil, LastError: evil, LastErrorAt: at}, {Name: evil, LastError: evil}})
	p.renderUltraCart(&b, ucConnection{State: evil, Problem: evil, ProblemAt: at}, nil)
	p.renderAudit(&b, []audit.Entry{{At: at, Summary: evil, Target: evil, Actor: evil, Outcome: evil, Kept: []byte(`"` + evil + `"`)}})
	p.deliveryList(&b, []history.Delivery{{At: at, Dest: evil, FactKind: evil, Email: evil, Status: evil, Error: evil, FactID: evil}}, true)
	b.WriteString(p.postButton("x", url.Values{evil: {evil}}, evil, "", evil))
	b.WriteString(p.pager("contacts", evil, "cursor"))
	var s strings.Builder
	p.renderField(&s, fieldView{field: field{Path: evil, Label: evil, Help: evil, Kind: kindText}, Text: true, Value: evil}, deliver.Choices{Why: evil})
	p.renderField(&s, fieldView{field: field{Path: evil, Label: evil}, Secret: true, Set: true, ClearName: evil}, deliver.Choices{})
	p.renderField(&s, fieldView{field: field{Path: evil, Label: evil, Help: evil, Kind: kindLists}, Selected: []string{"1", evil}},
		deliver.Choices{Options: []deliver.Choice{{Value: "1", Name: evil, Note: evil}}, None: evil,
			Stale: func(v string) deliver.Choice { return deliver.Choice{Value: v, Name: v, Note: evil} }})
	doc := p.page(200, "home", evil, b.String()+s.String()).Document
	if strings.Contains(doc, "<script>") || strings.Contains(doc, `"><script`) {
		t.Errorf("a page lets markup through:\n%s", doc)
	}
	if !strings.Contains(doc, "&#34;&gt;&lt;script&gt;") {
		t.Errorf("the page does not show the text escaped:\n%s", doc)
	}
}
