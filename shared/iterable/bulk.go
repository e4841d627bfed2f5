package iterable

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/deliver"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
)

// BulkResult is what UpdateProfiles did.
type BulkResult struct {
	// Exchanges are every request made, in order (the Api-Key redacted).
	Exchanges []history.HTTPExchange
	// Errors holds, per fact id, the error of a profile that did not update; a fact not in it
	// was delivered. Errors keep their class (deliver.Permanent, retryable).
	Errors map[string]error
	// Bulk and Single count users/bulkUpdate and users/update calls.
	Bulk, Single int
}

// UpdateProfiles delivers a backlog of ContactChanged facts through users/bulkUpdate: up to
// 1,000 users or 4 MB per call (Iterable's limits), each user Iterable refuses retried alone
// through users/update so that its own error (a forgotten user, a field of the wrong type) is
// the one reported. A call refused as too large is split in two. Lists are synced per contact
// afterwards, since bulk updates emit no subscribe events. Facts of other kinds are refused
// (use Deliver). The error return is for failures of the whole backlog (a 5xx, a 429, no
// answer), after which nothing can be said per fact and the caller retries them all.
func (d *Destination) UpdateProfiles(ctx context.Context, acct accounts.Account, facts []domain.Fact) (BulkResult, error) {
	res := BulkResult{Errors: map[string]error{}}
	log := d.log.With(slog.String("account", acct.ID), slog.String("destination", d.Name()))
	s, err := ParseSettings(acct)
	if err != nil {
		return res, deliver.Permanent(err)
	}
	sess := &session{d: d, account: acct.ID, base: s.BaseURL, key: s.APIKey.Reveal(), dry: s.DryRun(), log: log}
	defer func() { res.Exchanges = sess.ex }()

	var users []UserUpdate
	var ids []string
	for _, f := range facts {
		if f.Kind != domain.FactContactChanged || f.Contact == nil || f.Contact.Email == "" {
			res.Errors[f.ID] = deliver.Permanent(fmt.Errorf("%s is not a profile update; deliver it on its own", f.ID))
			continue
		}
		users = append(users, ProfileUpdate(*f.Contact))
		ids = append(ids, f.ID)
	}
	if err := d.bulk(ctx, sess, users, ids, &res); err != nil {
		return res, err
	}
	for _, f := range facts {
		if _, failed := res.Errors[f.ID]; failed || f.Kind != domain.FactContactChanged || f.Contact == nil {
			continue
		}
		if _, err := d.syncLists(ctx, sess, acct, s, *f.Contact); err != nil {
			res.Errors[f.ID] = err
		}
	}
	return res, nil
}

// chunks splits users into calls within the count and size limits.
func chunks(users []UserUpdate) ([][]UserUpdate, error) {
	var out [][]UserUpdate
	var cur []UserUpdate
	size := len(`{"users":[]}`)
	for _, u := range users {
		b, err := encode(u)
		if err != nil {
			return nil, err
		}
		if len(cur) > 0 && (len(cur) == maxBulkUsers || size+len(b)+1 > maxBulkBodyBytes) {
			out = append(out, cur)
			cur, size = nil, len(`{"users":[]}`)
		}
		cur = append(cur, u)
		size += len(b) + 1
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out, nil
}

func (d *Destination) bulk(ctx context.Context, sess *session, users []UserUpdate, ids []string, res *BulkResult) error {
	byEmail := map[string]int{}
	for i, u := range users {
		byEmail[u.Email] = i
	}
	groups, err := chunks(users)
	if err != nil {
		return deliver.Permanent(err)
	}
	for _, g := range groups {
		if err := d.bulkCall(ctx, sess, g, byEmail, users, ids, res); err != nil {
			return err
		}
	}
	return nil
}

func (d *Destination) bulkCall(ctx context.Context, sess *session, g []UserUpdate, byEmail map[string]int, users []UserUpdate, ids []string, res *BulkResult) error {
	var resp BulkResponse
	res.Bulk++
	err := sess.post(ctx, PathUsersBulkUpdate, BulkUpdate{Users: g}, &resp)
	var apiErr *APIError
	if errors.As(err, &apiErr) && (apiErr.Status == http.StatusRequestEntityTooLarge || apiErr.Code == "BatchTooLarge") && len(g) > 1 {
		// Iterable's real threshold is below ours: halve and try again.
		half := len(g) / 2
		if err := d.bulkCall(ctx, sess, g[:half], byEmail, users, ids, res); err != nil {
			return err
		}
		return d.bulkCall(ctx, sess, g[half:], byEmail, users, ids, res)
	}
	if err != nil {
		return err
	}
	for email := range resp.Failed() {
		i, ok := byEmail[email]
		if !ok {
			continue
		}
		// Retried alone, so the error reported is this user's own.
		res.Single++
		if err := sess.post(ctx, PathUsersUpdate, users[i], nil); err != nil {
			res.Errors[ids[i]] = err
		}
	}
	return nil
}

// DeliverProfiles is UpdateProfiles for the forwarder (deliver.ProfileBatcher): a batch of
// profile refreshes of different contacts in one users/bulkUpdate call.
func (d *Destination) DeliverProfiles(ctx context.Context, acct accounts.Account, facts []domain.Fact) (deliver.BatchOutcome, error) {
	res, err := d.UpdateProfiles(ctx, acct, facts)
	status := history.DeliverySent
	if s, perr := ParseSettings(acct); perr == nil && s.DryRun() {
		status = history.DeliveryDryRun
	}
	return deliver.BatchOutcome{Status: status, Exchanges: res.Exchanges, Errors: res.Errors}, err
}
