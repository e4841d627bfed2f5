package console

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/audit"
	"github.com/cartrelay/cartrelay/shared/iterable"
	"github.com/cartrelay/cartrelay/shared/ontraport"
	"github.com/cartrelay/cartrelay/shared/thrivecart/tcpoll"
	"github.com/cartrelay/cartrelay/shared/thrivecart/thrivecartapi"
)

// The settings page: the account's keys and toggles, each key checked with its vendor before it
// is saved (a refused key saves nothing of the post), Iterable's lists picked from the project's
// own, and the account's time zone.

// settingsState is the outcome of a post, shown above the form.
type settingsState struct {
	Saved    bool
	Problems []string
}

// listsView is what the page knows of the Iterable project's lists.
type listsView struct {
	Lists []iterable.List
	// Why is set when the lists could not be read (no key, refused, unreachable): the list
	// fields are then plain text boxes of ids.
	Why string
}

func (p *pageCtx) settingsPage() Response {
	return p.settings(http.StatusOK, nil, settingsState{})
}

func (p *pageCtx) settings(status int, form url.Values, st settingsState) Response {
	a, err := p.account()
	if err != nil {
		return p.failed("read your account", err)
	}
	lv := p.iterableLists(a)
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
			p.renderField(&b, f, lv)
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

func (p *pageCtx) renderField(b *strings.Builder, f fieldView, lv listsView) {
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
	case f.Kind == kindLists && lv.Why == "":
		p.renderListPicker(b, f, lv.Lists, id)
	default:
		extra := ""
		if f.Kind == kindZone {
			extra = ` list="zones" autocomplete="off" spellcheck="false"`
		}
		b.WriteString(`<label for="` + id + `">` + esc(f.Label) + `</label><input type="text" id="` + id + `" name="` + esc(f.Path) + `" value="` + esc(f.Value) + `"` + extra + described + `>`)
		if f.Kind == kindLists {
			b.WriteString(`<br><small class="muted">List ids, separated by commas. ` + esc(lv.Why) + `</small>`)
		}
		b.WriteString(help)
	}
	b.WriteString(`</div>`)
}

// renderListPicker shows the project's lists as checkboxes; an id the account has that Iterable
// no longer lists is shown too, ticked, so saving the page does not drop it unseen.
func (p *pageCtx) renderListPicker(b *strings.Builder, f fieldView, lists []iterable.List, id string) {
	b.WriteString(`<fieldset class="picker" aria-describedby="` + id + `-help"><legend>` + esc(f.Label) + `</legend><div class="checks">`)
	known := map[string]bool{}
	n := 0
	for _, l := range lists {
		if l.ListType == "Suppression" || l.ListType == "Internal" {
			continue // cartrelay subscribes contacts; these are not lists one joins
		}
		lid := strconv.FormatInt(l.ID, 10)
		known[lid] = true
		checked := ""
		if slices.Contains(f.Selected, lid) {
			checked = " checked"
		}
		n++
		b.WriteString(`<label><input type="checkbox" name="` + esc(f.Path) + `" value="` + lid + `"` + checked + `> ` + esc(l.Name) +
			` <small class="muted">#` + lid + ` · ` + esc(strings.ToLower(l.ListType)) + `</small></label>`)
	}
	for _, lid := range f.Selected {
		if !known[lid] {
			b.WriteString(`<label><input type="checkbox" name="` + esc(f.Path) + `" value="` + esc(lid) + `" checked> list #` + esc(lid) +
				` <small class="muted">(not among the project's lists any more)</small></label>`)
		}
	}
	if n == 0 {
		b.WriteString(`<span class="muted">The Iterable project has no lists yet; create one in Iterable and reload this page.</span>`)
	}
	b.WriteString(`</div></fieldset><small class="muted" id="` + id + `-help">` + esc(f.Help) + `</small>`)
}

// iterableLists reads the Iterable project's lists with the stored key.
func (p *pageCtx) iterableLists(a accounts.Account) listsView {
	if !a.Iterable.APIKey.IsSet() {
		return listsView{Why: "Set the Iterable API key to pick the lists by name."}
	}
	key, err := p.openKey(accounts.IterableAPIKey)
	if err != nil {
		p.log.Warn("console: iterable key not opened", slog.Any("error", err))
		return listsView{Why: "The stored Iterable API key could not be read just now; reload the page to try again."}
	}
	ctx, cancel := context.WithTimeout(p.ctx, checkTimeout)
	defer cancel()
	lists, err := iterable.Lists(ctx, p.c.d.HTTP, iterable.BaseURLFor(a.Iterable.BaseURL, a.Iterable.DataCenter), key)
	switch {
	case errors.Is(err, iterable.ErrKeyRefused):
		return listsView{Why: "Iterable refuses the stored API key, so its lists cannot be shown; set a working key."}
	case err != nil:
		p.log.Warn("console: iterable lists unreadable", slog.Any("error", err))
		return listsView{Why: "Iterable could not be reached to show the lists by name; reload the page to try again."}
	}
	return listsView{Lists: lists}
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
	if problems := p.checkKeys(before, form, sub); len(problems) > 0 {
		return p.settings(http.StatusUnprocessableEntity, form, settingsState{Problems: problems})
	}
	after, err := p.c.d.Accounts.Put(p.ctx, p.sess.Account, sub.Patch)
	var inv *accounts.InvalidError
	switch {
	case errors.As(err, &inv):
		var problems []string
		for _, pr := range inv.Problems {
			problems = append(problems, pr.Message)
		}
		p.log.Info("console: settings refused", slog.Int("problems", len(problems)))
		return p.settings(http.StatusUnprocessableEntity, form, settingsState{Problems: problems})
	case err != nil:
		p.log.Error("console: settings not saved", slog.Any("error", err))
		return p.settings(http.StatusInternalServerError, form,
			settingsState{Problems: []string{"cartrelay could not save the settings just now; nothing was changed."}})
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

// checkKeys asks ThriveCart, ONTRAPORT and Iterable about the keys a post sets (or whose app id
// or data center it changes) and says what is wrong; any problem saves nothing.
func (p *pageCtx) checkKeys(before accounts.Account, form url.Values, sub submission) []string {
	ctx, cancel := context.WithTimeout(p.ctx, checkTimeout)
	defer cancel()
	var problems []string
	var err error
	unreachable := func(vendor string, err error) {
		p.log.Info("console: key not checked", slog.String("vendor", vendor), slog.Any("error", err))
		problems = append(problems, vendor+" could not be reached to check the API key, so nothing was saved; try again shortly.")
	}
	if sub.NewThriveCartKey != "" {
		if _, err := p.c.d.ThriveCart.Ping(ctx, sub.NewThriveCartKey); errors.Is(err, thrivecartapi.ErrKeyRefused) {
			problems = append(problems, thriveCartKeyPath+": "+err.Error()+". Nothing was saved.")
		} else if err != nil {
			unreachable("ThriveCart", err)
		}
	}
	appID := strings.TrimSpace(form.Get(ontraportAppIDPath))
	opKey := sub.NewOntraportKey
	if opKey == "" && appID != before.Ontraport.AppID && before.Ontraport.APIKey.IsSet() && !checked(form, clearPrefix+ontraportKeyPath) {
		// A new app id must go with the stored key.
		if opKey, err = p.openKey(accounts.OntraportAPIKey); err != nil {
			unreachable("ONTRAPORT", err)
		}
	}
	if opKey != "" {
		if err := ontraport.CheckKey(ctx, p.c.d.HTTP, before.Ontraport.BaseURL, appID, opKey); errors.Is(err, ontraport.ErrKeyRefused) {
			problems = append(problems, "ontraport.api_key: ONTRAPORT refused the App ID "+strconv.Quote(appID)+" with this API key (both come from ONTRAPORT's Administration, Integrations, API Key Manager). Nothing was saved.")
		} else if err != nil {
			unreachable("ONTRAPORT", err)
		}
	}
	center := strings.TrimSpace(form.Get(iterableCenterPath))
	itKey := sub.NewIterableKey
	if itKey == "" && !strings.EqualFold(center, before.Iterable.DataCenter) && before.Iterable.APIKey.IsSet() && !checked(form, clearPrefix+iterableKeyPath) {
		// A key works in its own data center only.
		if itKey, err = p.openKey(accounts.IterableAPIKey); err != nil {
			unreachable("Iterable", err)
		}
	}
	if itKey != "" {
		if _, err := iterable.Lists(ctx, p.c.d.HTTP, iterable.BaseURLFor(before.Iterable.BaseURL, center), itKey); errors.Is(err, iterable.ErrKeyRefused) {
			problems = append(problems, "iterable.api_key: Iterable refused this API key in the "+dataCenterName(center)+
				" data center (use a server-side key of the project, from Integrations, API Keys). Nothing was saved.")
		} else if err != nil {
			unreachable("Iterable", err)
		}
	}
	return problems
}

func dataCenterName(dc string) string {
	if strings.EqualFold(dc, "eu") {
		return "EU"
	}
	return "US"
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
		va, okA := lookup(pa, k)
		vb, okB := lookup(pb, k)
		sa, _ := a.Settings[k].(accounts.Secret)
		sb, _ := b.Settings[k].(accounts.Secret)
		if !equalSetting(va, vb) || okA != okB || sa != sb {
			out = append(out, k)
		}
	}
	if accounts.SecretsDiffer(a, b) {
		for _, s := range []struct {
			path string
			x, y accounts.Secret
		}{
			{"ontraport.api_key", a.Ontraport.APIKey, b.Ontraport.APIKey},
			{"iterable.api_key", a.Iterable.APIKey, b.Iterable.APIKey},
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

// openKey reads one stored secret of the session's account. Pages read the account with its
// secrets sealed; only the checks that call a vendor with a stored key open it.
func (p *pageCtx) openKey(f accounts.Field) (string, error) {
	a, err := p.c.d.Accounts.Get(p.ctx, p.sess.Account, f)
	if err != nil {
		return "", fmt.Errorf("open %s: %w", f, err)
	}
	switch f {
	case accounts.IterableAPIKey:
		return a.Iterable.APIKey.Reveal(), nil
	case accounts.OntraportAPIKey:
		return a.Ontraport.APIKey.Reveal(), nil
	}
	return "", fmt.Errorf("console: no stored key %s to check", f)
}
