package console

import (
	"html"
	"strconv"
	"strings"
)

// The console's two pages are written with html.EscapeString rather than html/template: a
// template's field and method lookups go through reflection, which makes the Go linker keep
// every exported method of every type in the connect function (the AWS SDK's included). That
// alone grew its bootstrap by several megabytes. Every value that reaches a page goes through
// esc; the URLs come from the deployment's configuration, never from a request.

func esc(s string) string { return html.EscapeString(s) }

func logoutForm(action, csrf string) string {
	return `<form method="post" action="` + esc(action) + `" style="display:inline"><input type="hidden" name="csrf" value="` + esc(csrf) +
		`"><button type="submit">Sign out</button></form>`
}

func renderDashboard(v dashboardView) string {
	var b strings.Builder
	b.WriteString(`<p>Account <code>` + esc(v.Account) + `</code></p>
<h2>Webhooks</h2>
<ul><li>UltraCart: <code>` + esc(v.UltraCartWebhook) + `</code></li><li>ThriveCart: <code>` + esc(v.ThriveCartWebhook) + `</code></li></ul>
<h2>UltraCart connection</h2>
<p>Status: <strong>` + esc(v.Connected) + `</strong>`)
	switch {
	case v.Connected == "not connected" && v.Unbound:
		b.WriteString(`</p>` + "\n" + `<p>No UltraCart store is bound to this account. To connect yours to it, ask whoever runs this cartrelay for an invite link for this account (<code>cartrelay invites create --account ` +
			esc(v.Account) + `</code>).`)
	case v.Connected == "not connected":
		b.WriteString(` · <a href="` + esc(v.ConnectURL) + `">Connect UltraCart</a>`)
	}
	b.WriteString("</p>\n")
	if v.Problem != "" {
		b.WriteString(`<div role="alert" style="color:#a00"><p><strong>Polling has stopped`)
		if v.ProblemAt != "" {
			b.WriteString(" since " + esc(v.ProblemAt))
		}
		again := `<a href="` + esc(v.ConnectURL) + `">Connect UltraCart again</a>`
		if v.Unbound {
			again = `Whoever runs this cartrelay renews this account's UltraCart credentials.`
		}
		b.WriteString(`.</strong> ` + esc(v.Problem) + `</p><p>` + again + `</p></div>` + "\n")
	}
	streamTable(&b, v.Streams)
	b.WriteString("<h2>ThriveCart</h2>\n")
	streamTable(&b, []streamView{v.ThriveCart})
	b.WriteString(`<p><a href="` + esc(v.SettingsURL) + `">Settings</a> · ` + logoutForm(v.LogoutURL, v.CSRF) + `</p>`)
	return b.String()
}

// streamTable shows the progress of polled streams.
func streamTable(b *strings.Builder, streams []streamView) {
	b.WriteString(`<table><tr><th align="left">Stream</th><th align="left">Loaded</th><th align="left">Estimated</th><th align="left">State</th></tr>` + "\n")
	for _, s := range streams {
		b.WriteString(`<tr><td>` + esc(s.Name) + `</td>`)
		if !s.Started {
			b.WriteString(`<td colspan="3">not started`)
			if s.LastError != "" {
				b.WriteString(": " + esc(s.LastError))
			}
			b.WriteString("</td></tr>\n")
			continue
		}
		state := "loading history"
		switch {
		case s.Status != "":
			state = s.Status
		case s.CaughtUp:
			state = "up to date"
		}
		b.WriteString(`<td>` + strconv.FormatInt(s.Done, 10) + `</td><td>` + strconv.FormatInt(s.Estimated, 10) + `</td><td>` + esc(state))
		if s.LastError != "" {
			b.WriteString(`<br><small>last error`)
			if s.LastErrorAt != "" {
				b.WriteString(" at " + esc(s.LastErrorAt))
			}
			b.WriteString(": " + esc(s.LastError) + `</small>`)
		}
		b.WriteString("</td></tr>\n")
	}
	b.WriteString("</table>\n")
}

func renderSettings(v settingsView) string {
	var b strings.Builder
	b.WriteString(`<p>Account <code>` + esc(v.Account) + `</code> · <a href="` + esc(v.DashboardURL) + `">Back to the console</a> · ` +
		logoutForm(v.LogoutURL, v.CSRF) + `</p>` + "\n")
	if v.Saved {
		b.WriteString(`<p role="status" style="color:#060"><strong>Saved.</strong></p>` + "\n")
	}
	if len(v.Problems) > 0 {
		b.WriteString(`<div role="alert" style="color:#a00"><p><strong>Nothing was saved:</strong></p><ul>`)
		for _, p := range v.Problems {
			b.WriteString(`<li>` + esc(p) + `</li>`)
		}
		b.WriteString("</ul></div>\n")
	}
	b.WriteString(`<form method="post" action="` + esc(v.Action) + `">
<input type="hidden" name="csrf" value="` + esc(v.CSRF) + `">
`)
	for _, s := range v.Sections {
		b.WriteString(`<fieldset style="margin:1rem 0"><legend><strong>` + esc(s.Title) + `</strong></legend>` + "\n")
		for _, f := range s.Fields {
			b.WriteString("<p>")
			switch {
			case f.Bool:
				checked := ""
				if f.Checked {
					checked = " checked"
				}
				b.WriteString(`<label><input type="checkbox" name="` + esc(f.Path) + `"` + checked + `> ` + esc(f.Label) + `</label>`)
			case f.Secret:
				state, placeholder := "not set", "not set"
				if f.Set {
					state, placeholder = "set", "leave empty to keep"
				}
				b.WriteString(`<label>` + esc(f.Label) + ` <small>(` + state + `)</small><br><input type="password" name="` + esc(f.Path) +
					`" autocomplete="off" placeholder="` + placeholder + `"></label>`)
				if f.Set {
					b.WriteString(` <label><input type="checkbox" name="` + esc(f.ClearName) + `"> remove</label>`)
				}
			default:
				b.WriteString(`<label>` + esc(f.Label) + `<br><input type="text" name="` + esc(f.Path) + `" value="` + esc(f.Value) + `"></label>`)
			}
			if f.Help != "" {
				b.WriteString(`<br><small>` + esc(f.Help) + `</small>`)
			}
			b.WriteString("</p>\n")
		}
		b.WriteString("</fieldset>\n")
	}
	b.WriteString(`<p><button type="submit">Save settings</button></p>
</form>`)
	return b.String()
}
