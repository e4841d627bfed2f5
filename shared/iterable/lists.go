package iterable

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/deliver"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/store"
)

// Lists. cartrelay adds a contact to Iterable lists for four reasons, each with its own setting:
// email opt-in (email_list_ids), SMS opt-in with an E.164 phone (sms_list_ids), a purchase
// (purchase_list_ids) and an abandoned cart (cart_list_ids). Opting out leaves the opt-in lists.
//
// What cartrelay subscribed is remembered per contact, item pk "A#<acct>#ITL#<email>", sk
// "LISTS": each list with the reasons it was joined for. That record is what makes three things
// possible: the many profile updates that change nothing about lists make no calls; a list
// removed from the settings is left (only by the contacts cartrelay put on it, at their next
// profile update, purchase or cart); and a contact is never taken off a list that it joined
// for a reason that still holds (list 5 as both an email and a purchase list stays joined for
// the purchase when the email setting drops it). An opt-in the source never stated (nil)
// changes nothing.

// Reasons a contact joins a list.
const (
	ListEmail    = "email"
	ListSMS      = "sms"
	ListPurchase = "purchase"
	ListCart     = "cart"
)

type listState struct {
	// Email and SMS are the opt-ins last acted on: "in", "out" or "" (never stated).
	Email string `json:"email,omitempty"`
	SMS   string `json:"sms,omitempty"`
	// Joined maps each list id cartrelay subscribed the contact to, to the reasons (sorted).
	Joined map[string][]string `json:"joined,omitempty"`
	// EmailLists and SMSLists are the record's form before Joined: the lists last synced for
	// each opt-in. Read once to fill Joined, never written again.
	EmailLists string `json:"email_lists,omitempty"`
	SMSLists   string `json:"sms_lists,omitempty"`
}

func listsPK(account, email string) string { return "A#" + account + "#ITL#" + email }

const listsSK = "LISTS"

func optState(v *bool) string {
	switch {
	case v == nil:
		return ""
	case *v:
		return "in"
	}
	return "out"
}

func idsKey(ids []int64) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.FormatInt(id, 10)
	}
	return strings.Join(parts, ",")
}

// configuredLists are the lists the settings name for each reason.
func configuredLists(s Settings) map[string][]int64 {
	return map[string][]int64{ListEmail: s.EmailLists, ListSMS: s.SMSLists, ListPurchase: s.PurchaseLists, ListCart: s.CartLists}
}

func (st listState) equal(o listState) bool {
	if st.Email != o.Email || st.SMS != o.SMS || st.EmailLists != o.EmailLists || st.SMSLists != o.SMSLists || len(st.Joined) != len(o.Joined) {
		return false
	}
	for k, v := range st.Joined {
		if !slices.Equal(v, o.Joined[k]) {
			return false
		}
	}
	return true
}

// migrate fills Joined from the record's earlier form: the lists synced while opted in were
// joined for that opt-in.
func (st *listState) migrate() {
	if st.Joined != nil || (st.EmailLists == "" && st.SMSLists == "") {
		return
	}
	st.Joined = map[string][]string{}
	for _, x := range []struct{ opt, lists, why string }{{st.Email, st.EmailLists, ListEmail}, {st.SMS, st.SMSLists, ListSMS}} {
		if x.opt != "in" {
			continue
		}
		for _, id := range strings.Split(x.lists, ",") {
			if id != "" {
				st.join(id, x.why)
			}
		}
	}
	st.EmailLists, st.SMSLists = "", ""
}

func (st *listState) join(id, why string) {
	if st.Joined == nil {
		st.Joined = map[string][]string{}
	}
	if !slices.Contains(st.Joined[id], why) {
		st.Joined[id] = append(slices.Clone(st.Joined[id]), why)
		slices.Sort(st.Joined[id])
	}
}

func (st *listState) joinedFor(id, why string) bool { return slices.Contains(st.Joined[id], why) }

// listSync is one delivery's work on a contact's lists.
type listSync struct {
	d     *Destination
	sess  *session
	acct  accounts.Account
	email string
	prev  listState
	next  listState
	ver   int64
	notes []string
}

func (d *Destination) loadLists(ctx context.Context, sess *session, acct accounts.Account, email string) (*listSync, error) {
	ls := &listSync{d: d, sess: sess, acct: acct, email: email}
	if !sess.dry {
		it, err := d.store.Get(ctx, listsPK(acct.ID, email), listsSK)
		switch {
		case err == nil:
			if json.Unmarshal(it.Data, &ls.prev) != nil {
				ls.prev = listState{}
			}
			ls.ver = it.Version
		case !errors.Is(err, store.ErrNotFound):
			return nil, fmt.Errorf("read list state of %s: %w", email, err)
		}
	}
	ls.next = ls.prev
	ls.next.Joined = map[string][]string{}
	for k, v := range ls.prev.Joined {
		ls.next.Joined[k] = slices.Clone(v)
	}
	if ls.prev.Joined == nil {
		ls.next.Joined = nil
	}
	ls.next.migrate()
	return ls, nil
}

// call subscribes or unsubscribes the contact on one list and checks Iterable's per-user answer.
func (ls *listSync) call(ctx context.Context, id int64, subscribe bool, sub UserUpdate) error {
	var resp BulkResponse
	var err error
	if subscribe {
		err = ls.sess.post(ctx, PathListsSubscribe, Subscribe{ListID: id, Subscribers: []UserUpdate{sub}}, &resp)
	} else {
		// channelUnsubscribe stays false: leaving a list never unsubscribes from the channel.
		err = ls.sess.post(ctx, PathListsUnsubscribe, Unsubscribe{ListID: id, Subscribers: []Unsubscriber{{Email: ls.email}}}, &resp)
	}
	if err != nil {
		return err
	}
	if cat, failed := resp.Failed()[ls.email]; failed || resp.FailCount > 0 {
		if cat == "" {
			cat = "failCount " + strconv.Itoa(resp.FailCount)
		}
		return deliver.Permanent(fmt.Errorf("iterable list %d refused %s (%s)", id, ls.email, cat))
	}
	return nil
}

// dropRemoved leaves every list the settings no longer name for any reason it was joined for;
// the reasons that lost their list are forgotten.
func (ls *listSync) dropRemoved(ctx context.Context, s Settings) error {
	conf := configuredLists(s)
	ids := make([]string, 0, len(ls.next.Joined))
	for id := range ls.next.Joined {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var left []string
	for _, id := range ids {
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil {
			delete(ls.next.Joined, id) // not a list id: nothing cartrelay can have joined
			continue
		}
		var keep []string
		for _, why := range ls.next.Joined[id] {
			if slices.Contains(conf[why], n) {
				keep = append(keep, why)
			}
		}
		if len(keep) > 0 {
			ls.next.Joined[id] = keep
			continue
		}
		if err := ls.call(ctx, n, false, UserUpdate{}); err != nil {
			return err
		}
		delete(ls.next.Joined, id)
		left = append(left, id)
	}
	if len(left) > 0 {
		ls.notes = append(ls.notes, "unsubscribed from lists "+strings.Join(left, ",")+", no longer in the settings")
	}
	return nil
}

// optIn joins the opt-in lists of a reason on "in", and leaves them on "out". Lists already
// joined for the reason are not asked again while the opt-in stands.
func (ls *listSync) optIn(ctx context.Context, why, want string, ids []int64, have *string, sub UserUpdate) error {
	if want == "" || len(ids) == 0 {
		return nil
	}
	var done []int64
	for _, id := range ids {
		key := strconv.FormatInt(id, 10)
		switch {
		case want == "in" && (*have != "in" || !ls.next.joinedFor(key, why)):
			if len(ls.next.Joined[key]) == 0 || why == ListSMS {
				// Joined for another reason already, it is the same membership (an SMS list
				// is asked anyway: the subscription carries the phone number).
				if err := ls.call(ctx, id, true, sub); err != nil {
					return err
				}
				done = append(done, id)
			}
			ls.next.join(key, why)
		case want == "out" && *have != "out":
			if err := ls.call(ctx, id, false, UserUpdate{}); err != nil {
				return err
			}
			// Off the list whatever else it was joined for: Iterable keeps one membership.
			delete(ls.next.Joined, key)
			done = append(done, id)
		}
	}
	*have = want
	if len(done) > 0 {
		verb := "subscribed to"
		if want == "out" {
			verb = "unsubscribed from"
		}
		label := why
		if why == ListSMS {
			label = "SMS"
		}
		ls.notes = append(ls.notes, fmt.Sprintf("%s %s lists %s", verb, label, idsKey(done)))
	}
	return nil
}

// enrol joins the lists of a behavioural reason (a purchase, an abandoned cart) not yet joined.
func (ls *listSync) enrol(ctx context.Context, why string, ids []int64) error {
	var done []int64
	for _, id := range ids {
		key := strconv.FormatInt(id, 10)
		if ls.next.joinedFor(key, why) {
			continue
		}
		if len(ls.next.Joined[key]) == 0 {
			if err := ls.call(ctx, id, true, UserUpdate{Email: ls.email}); err != nil {
				return err
			}
			done = append(done, id)
		}
		ls.next.join(key, why)
	}
	if len(done) > 0 {
		ls.notes = append(ls.notes, fmt.Sprintf("subscribed to %s lists %s", why, idsKey(done)))
	}
	return nil
}

// save records what was synced. A dry run remembers nothing, so the first live delivery acts.
func (ls *listSync) save(ctx context.Context) string {
	note := strings.Join(ls.notes, "; ")
	if ls.sess.dry || ls.next.equal(ls.prev) {
		return note
	}
	data, _ := json.Marshal(ls.next)
	it := store.Item{PK: listsPK(ls.acct.ID, ls.email), SK: listsSK, Data: data, Version: ls.ver + 1}
	w := store.PutIfVersion(it, ls.ver)
	if ls.ver == 0 {
		w = store.PutItem(it, store.NotExists)
	}
	if err := ls.d.store.Write(ctx, w); err != nil && !errors.Is(err, store.ErrConditionFailed) {
		// The lists are right in Iterable; a lost record only repeats an idempotent call later.
		ls.sess.log.Warn("could not record list state", "error", err)
	}
	return note
}

// syncLists brings a contact's lists in line with its opt-ins and the settings: lists removed
// from the settings are left first, then the opt-in lists joined or left.
func (d *Destination) syncLists(ctx context.Context, sess *session, acct accounts.Account, s Settings, c domain.Contact) (string, error) {
	ls, err := d.loadLists(ctx, sess, acct, c.Email)
	if err != nil {
		return "", err
	}
	if len(ls.next.Joined) == 0 && len(s.EmailLists) == 0 && len(s.SMSLists) == 0 {
		return "", nil
	}
	if err := ls.dropRemoved(ctx, s); err != nil {
		return "", err
	}
	if err := ls.optIn(ctx, ListEmail, optState(c.EmailOptIn), s.EmailLists, &ls.next.Email, UserUpdate{Email: c.Email}); err != nil {
		return "", err
	}
	smsWant := optState(c.SMSOptIn)
	if smsWant == "in" && !strings.HasPrefix(c.Phone, "+") {
		// SMS needs an E.164 number on the profile; subscribe once one arrives.
		smsWant = ""
	}
	smsSub := UserUpdate{Email: c.Email}
	if strings.HasPrefix(c.Phone, "+") {
		smsSub.DataFields = Fields{"phoneNumber": c.Phone}
	}
	if err := ls.optIn(ctx, ListSMS, smsWant, s.SMSLists, &ls.next.SMS, smsSub); err != nil {
		return "", err
	}
	return ls.save(ctx), nil
}

// enrolLists adds the contact of a purchase or an abandoned cart to the lists the settings name
// for it (behavioural enrolment), after leaving the lists removed from the settings. A contact who
// opted out of email is not enrolled: these lists feed email journeys.
func (d *Destination) enrolLists(ctx context.Context, sess *session, acct accounts.Account, s Settings, email, why string) (string, error) {
	ids := configuredLists(s)[why]
	if len(ids) == 0 {
		return "", nil
	}
	st, err := d.contact(ctx, acct.ID, email)
	if err != nil {
		return "", err
	}
	if st.Profile.EmailOptIn != nil && !*st.Profile.EmailOptIn {
		return fmt.Sprintf("not added to %s lists %s: the contact opted out of email", why, idsKey(ids)), nil
	}
	ls, err := d.loadLists(ctx, sess, acct, email)
	if err != nil {
		return "", err
	}
	if err := ls.dropRemoved(ctx, s); err != nil {
		return "", err
	}
	if err := ls.enrol(ctx, why, ids); err != nil {
		return "", err
	}
	return ls.save(ctx), nil
}
