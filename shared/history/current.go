package history

import (
	"context"
	"fmt"
)

// Current reads a contact as destinations should see it now: email is first resolved through any
// email change, and while the change's records are still moving, the orders and subscriptions
// not moved yet are folded in (they are the contact's too: a cart reminder must see an order
// placed under the old email, a subscription field must count every subscription).
func (r *Repo) Current(ctx context.Context, account, email string) (*ContactState, error) {
	resolved, err := r.ResolveEmail(ctx, account, email)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", email, err)
	}
	st, err := r.LoadContact(ctx, account, resolved)
	if err != nil {
		return nil, err
	}
	if len(st.MovingFrom) == 0 {
		return st, nil
	}
	sources, err := r.MovingInto(ctx, account, resolved)
	if err != nil {
		return nil, err
	}
	for _, e := range sources {
		src, err := r.LoadContact(ctx, account, e)
		if err != nil {
			return nil, err
		}
		for k, o := range src.Orders {
			if _, ok := st.Orders[k]; !ok {
				st.Orders[k] = o
			}
		}
		for k, s := range src.Subs {
			if _, ok := st.Subs[k]; !ok {
				st.Subs[k] = s
			}
		}
	}
	return st, nil
}
