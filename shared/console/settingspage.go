package console

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/audit"
	"github.com/cartrelay/cartrelay/shared/deliver"
	"github.com/cartrelay/cartrelay/shared/destinations"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/source"
	"github.com/cartrelay/cartrelay/shared/thrivecart/tcpoll"
)

// The settings page: the account's keys and toggles, each key checked with its vendor before it
// is saved (a refused key saves nothing of the post), values ticked among what a destination
// offers (Iterable's lists, deliver.Form), and the account's time zone.

// settingsState is the outcome of a post, shown above the form.
type settingsState struct {
	Saved    bool
	Problems []string
}

func (p *pageCtx) settingsPage() Response {
	return p.settings(http.StatusOK, nil, settingsState{})
}

func (p *pageCtx) settings(status int, form url.Values, st settingsState) Response {
	a, err := p.account()
	if err != nil {
		return p.failed("read your account", err)
	}
	choices := p.choices(a)
	var b strings.Builder
	if st.Saved {
		b.WriteString(`<div class="notice" role="status"><strong>Saved.</strong></div>`)
	}
	if len(st.Problems) > 0 {
		b.WriteString(`<div class="alert" role="alert"><p><strong>Nothing was saved:</strong></p><ul>`)
		for _, pr := range st.Problems {
			b.WriteString(`<li>` + esc(pr) + `</li>`)
		}
		b.WriteString(`</ul></div>`)
	}
	b.WriteString(`<form method="post" action="` + esc(p.c.URL("settings")) + `"><input type="hidden" name="csrf" value="` + esc(p.csrf()) + `">`)
	for _, s := range views(a, form) {
		b.WriteString(`<fieldset><legend>` + esc(s.Title) + `</legend>`)
		for _, f := range s.Fields {
			p.renderField(&b, f, choices[f.dest])
		}
		b.WriteString(`</fieldset>`)
	}
	b.WriteString(`<datalist id="zones">`)
	for _, z := range commonZones {
		b.WriteString(`<option value="` + esc(z) + `">`)
	}
	b.WriteString(`</datalist><p><button type="submit">Save settings</button></p></form>`)
	return p.page(status, "settings", "Settings", b.String())
}

// fieldID is an element id for a setting's path.
func fieldID(path string) string { return esc("f-" + strings.ReplaceAll(path, ".", "-")) }

func (p *pageCtx) renderField(b *strings.Builder, f fieldView, ch deliver.Choices) {
	id := fieldID(f.Path)
	help := ""
	if f.Help != "" {
		help = `<br><small class="muted" id="` + id + `-help">` + esc(f.Help) + `</small>`
	}
	described := ""
	if f.Help != "" {
		described = ` aria-describedby="` + id + `-help"`
	}
	b.WriteString(`<div class="field">`)
	switch {
	case f.Bool:
		checked := ""
		if f.Checked {
			checked = " checked"
		}
		b.WriteString(`<div class="checks"><label><input type="checkbox" id="` + id + `" name="` + esc(f.Path) + `"` + checked + described + `> ` + esc(f.Label) + `</label></div>` + help)
	case f.Secret:
		state, placeholder := "not set", "not set"
		if f.Set {
			state, placeholder = "set", "leave empty to keep"
		}
		b.WriteString(`<label for="` + id + `">` + esc(f.Label) + ` <small>(` + state + `)</small></label><input type="password" id="` + id + `" name="` + esc(f.Path) +
			`" autocomplete="off" placeholder="` + placeholder + `"` + described + `>`)
		if f.Set {
			// Several stored secrets each have such a box: its name says which one it removes.
			b.WriteString(` <span class="checks"><label><input type="checkbox" name="` + esc(f.ClearName) + `" aria-label="Remove ` + esc(f.Label) + `"> remove</label></span>`)
		}
		b.WriteString(help)
	case f.Kind == kindLists && ch.Why == "":
		p.renderListPicker(b, f, ch, id)
	default:
		extra := ""
		if f.Kind == kindZone {
			extra = ` list="zones" autocomplete="off" spellcheck="false"`
		}
		b.WriteString(`<label for="` + id + `">` + esc(f.Label) + `</label><input type="text" id="` + id + `" name="` + esc(f.Path) + `" value="` + esc(f.Value) + `"` + extra + described + `>`)
		if f.Kind == kindLists {
			b.WriteString(`<br><small class="muted">Separate them with commas. ` + esc(ch.Why) + `</small>`)
		}
		b.WriteString(help)
	}
	b.WriteString(`</div>`)
}

// renderListPicker shows a destination's choices as checkboxes; a value the account has that
// the destination no longer offers is shown too, ticked, so saving the page does not drop it
// unseen.
func (p *pageCtx) renderListPicker(b *strings.Builder, f fieldView, ch deliver.Choices, id string) {
	b.WriteString(`<fieldset class="picker" aria-describedby="` + id + `-help"><legend>` + esc(f.Label) + `</legend><div class="checks">`)
	box := func(c deliver.Choice, checked bool) {
		attr := ""
		if checked {
			attr = " checked"
		}
		b.WriteString(`<label><input type="checkbox" name="` + esc(f.Path) + `" value="` + esc(c.Value) + `"` + attr + `> ` + esc(c.Name) +
			` <small class="muted">` + esc(c.Note) + `</small></label>`)
	}
	known := map[string]bool{}
	for _, c := range ch.Options {
		known[c.Value] = true
		box(c, slices.Contains(f.Selected, c.Value))
	}
	for _, v := range f.Selected {
		if !known[v] {
			stale := deliver.Choice{Value: v, Name: v}
			if ch.Stale != nil {
				stale = ch.Stale(v)
			}
			box(stale, true)
		}
	}
	if len(ch.Options) == 0 {
		b.WriteString(`<span class="muted">` + esc(ch.None) + `</span>`)
	}
	b.WriteString(`</div></fieldset><small class="muted" id="` + id + `-help">` + esc(f.Help) + `</small>`)
}

// choices asks each destination that offers values to tick (deliver.Form.Choices) for them,
// with the account as stored.
func (p *pageCtx) choices(a accounts.Account) map[string]deliver.Choices {
	out := map[string]deliver.Choices{}
	for _, r := range destinations.All() {
		if r.Form == nil || r.Form.Choices == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(p.ctx, checkTimeout)
		out[r.Name] = r.Form.Choices(ctx, p.formInput(a, a))
		cancel()
	}
	return out
}

// formInput is what a destination's Form is asked with.
func (p *pageCtx) formInput(before, after accounts.Account) deliver.FormInput {
	return deliver.FormInput{HTTP: p.c.d.HTTP, Before: before, After: after, Open: p.openKey, Log: p.log}
}

func (p *pageCtx) saveSettings() Response {
	form := p.req.Form
	before, err := p.account()
	if err != nil {
		return p.failed("read your account", err)
	}
	sub, err := parseForm(before, form)
	if err != nil {
		return p.failed("read the form", err)
	}
	// The account as the post would leave it: the destinations check the keys it gives there.
	preview, err := p.c.d.Accounts.Preview(p.ctx, p.sess.Account, sub.Patch)
	if r, refused := p.refused(form, err); refused {
		return r
	}
	if problems := p.checkKeys(before, preview, sub); len(problems) > 0 {
		return p.settings(http.StatusUnprocessableEntity, form, settingsState{Problems: problems})
	}
	after, err := p.c.d.Accounts.Put(p.ctx, p.sess.Account, sub.Patch)
	if r, refused := p.refused(form, err); refused {
		return r
	}
	p.acct = &after
	if sub.NewThriveCartKey != "" {
		// A stream stopped for a refused or missing key starts again with the checked one.
		if err := tcpoll.Resume(p.ctx, p.c.d.Store, p.sess.Account); err != nil {
			p.log.Warn("console: thrivecart polling not resumed; it resumes within the hour", slog.Any("error", err))
		}
	}
	if changed := changedKeys(before, after); len(changed) > 0 {
		p.record(p.entry(audit.ChangeSettings, "", "Changed settings: "+strings.Join(changed, ", ")))
	}
	var cookies []string
	if accounts.SecretsDiffer(before, after) {
		// New keys end every other session (one that saw the old keys may belong to whoever
		// they were changed against); this browser gets a new one.
		if err := EndSessions(p.ctx, p.c.d.Store, p.sess.Account, p.req.Now); err != nil {
			p.log.Error("console: sessions not ended after a key change", slog.Any("error", err))
		} else if fresh, err := p.c.sessions.IssueVia(p.sess.Account, p.sess.Via, p.req.Now); err != nil {
			p.log.Error("console: session not renewed", slog.Any("error", err))
		} else {
			p.sess, cookies = fresh, []string{p.c.sessions.SetCookie(fresh, p.req.Now)}
			p.log.Info("console: keys changed; other sessions ended")
		}
	}
	p.log.Info("console: settings saved")
	r := p.settings(http.StatusOK, nil, settingsState{Saved: true})
	r.Cookies = append(r.Cookies, cookies...)
	return r
}

// refused is the page for a post that Preview or Put refused (what is wrong with it, or that
// nothing could be saved); refused is false when err is nil.
func (p *pageCtx) refused(form url.Values, err error) (Response, bool) {
	var inv *accounts.InvalidError
	switch {
	case errors.As(err, &inv):
		var problems []string
		for _, pr := range inv.Problems {
			problems = append(problems, pr.Message)
		}
		p.log.Info("console: settings refused", slog.Int("problems", len(problems)))
		return p.settings(http.StatusUnprocessableEntity, form, settingsState{Problems: problems}), true
	case err != nil:
		p.log.Error("console: settings not saved", slog.Any("error", err))
		return p.settings(http.StatusInternalServerError, form,
			settingsState{Problems: []string{"cartrelay could not save the settings just now; nothing was changed."}}), true
	}
	return Response{}, false
}

// checkKeys asks ThriveCart about a key the post sets, and each destination (deliver.Form)
// about the keys the previewed account gives it or pairs anew with a stored one, and says what
// is wrong; any problem saves nothing.
func (p *pageCtx) checkKeys(before, after accounts.Account, sub submission) []string {
	ctx, cancel := context.WithTimeout(p.ctx, checkTimeout)
	defer cancel()
	var problems []string
	in := p.formInput(before, after)
	if sub.NewThriveCartKey != "" {
		err := errors.New("no key check in this runtime")
		if p.c.d.CheckKey != nil {
			err = p.c.d.CheckKey(ctx, p.sess.Account, string(domain.ThriveCart), sub.NewThriveCartKey)
		}
		if errors.Is(err, source.ErrRefused) {
			problems = append(problems, thriveCartKeyPath+": "+err.Error()+". Nothing was saved.")
		} else if err != nil {
			problems = append(problems, in.Unreachable("ThriveCart", err))
		}
	}
	for _, r := range destinations.All() {
		if r.Form != nil && r.Form.Verify != nil {
			problems = append(problems, r.Form.Verify(ctx, in)...)
		}
	}
	return problems
}

// changedKeys names the settings that differ (secrets by name only).
func changedKeys(a, b accounts.Account) []string {
	pa, pb := accounts.Public(a), accounts.Public(b)
	var out []string
	keys := accounts.Keys()
	for _, m := range []map[string]any{a.Settings, b.Settings} {
		for k := range m {
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	for _, k := range keys {
		va, okA := accounts.Lookup(pa, k)
		vb, okB := accounts.Lookup(pb, k)
		sa, _ := a.Settings[k].(accounts.Secret)
		sb, _ := b.Settings[k].(accounts.Secret)
		if !equalSetting(va, vb) || okA != okB || sa != sb {
			out = append(out, k)
		}
	}
	if accounts.SecretsDiffer(a, b) {
		// The sections' secrets are compared above, in Settings.
		for _, s := range []struct {
			path string
			x, y accounts.Secret
		}{
			{"thrivecart.api_key", a.ThriveCart.APIKey, b.ThriveCart.APIKey},
			{"thrivecart.secret", a.ThriveCart.Secret, b.ThriveCart.Secret},
		} {
			// Sealed values are compared as sealed: one that was set or cleared differs.
			if s.x != s.y && !slices.Contains(out, s.path) {
				out = append(out, s.path)
			}
		}
	}
	return out
}

func equalSetting(a, b any) bool {
	return strings.TrimSpace(fmt.Sprint(a)) == strings.TrimSpace(fmt.Sprint(b))
}

// commonZones are offered as suggestions for the time zone; any IANA name is accepted.
var commonZones = []string{
	"UTC", "America/New_York", "America/Chicago", "America/Denver", "America/Phoenix", "America/Los_Angeles",
	"America/Anchorage", "Pacific/Honolulu", "America/Toronto", "America/Vancouver", "America/Halifax", "America/Mexico_City",
	"America/Sao_Paulo", "America/Argentina/Buenos_Aires", "America/Bogota", "Europe/London", "Europe/Dublin",
	"Europe/Lisbon", "Europe/Paris", "Europe/Berlin", "Europe/Madrid", "Europe/Rome", "Europe/Amsterdam",
	"Europe/Stockholm", "Europe/Warsaw", "Europe/Athens", "Europe/Istanbul", "Europe/Moscow", "Africa/Johannesburg",
	"Africa/Lagos", "Africa/Cairo", "Asia/Dubai", "Asia/Kolkata", "Asia/Bangkok", "Asia/Singapore", "Asia/Hong_Kong",
	"Asia/Shanghai", "Asia/Tokyo", "Asia/Seoul", "Australia/Perth", "Australia/Sydney", "Pacific/Auckland",
}

// openKey reads one stored secret of a destination's section of the session's account. Pages
// read the account with its secrets sealed; only the checks that call a vendor with a stored
// key open it.
func (p *pageCtx) openKey(ctx context.Context, f accounts.Field) (accounts.Secret, error) {
	if !slices.ContainsFunc(destinations.All(), func(r deliver.Registration) bool { return r.Form != nil && slices.Contains(r.Form.Opens, f) }) {
		// The connect function's grant allows no other (shared/grants).
		return accounts.Secret{}, fmt.Errorf("console: %s is not a key a destination's settings form opens", f)
	}
	a, err := p.c.d.Accounts.Get(ctx, p.sess.Account, f)
	if err != nil {
		return accounts.Secret{}, fmt.Errorf("open %s: %w", f, err)
	}
	return a.SecretAt(string(f)), nil
}
