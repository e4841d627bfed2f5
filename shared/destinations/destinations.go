// Package destinations is the one list of cartrelay's destinations. Each destination package
// offers its deliver.Registration; this list is the only place that names them all, and every
// other place (ingest's routing, the forwarders, serve, the account checks, the console, the
// erasures) reads it. A name that is not registered is an error, never a silent false.
package destinations

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/deliver"
	"github.com/cartrelay/cartrelay/shared/iterable"
	"github.com/cartrelay/cartrelay/shared/ontraport"
	"github.com/cartrelay/cartrelay/shared/queue"
	"github.com/cartrelay/cartrelay/shared/signedhooks"
)

// All lists the registered destinations, in the order pages and logs show them.
func All() []deliver.Registration {
	return []deliver.Registration{
		ontraport.Registration(),
		iterable.Registration(),
		signedhooks.Registration(),
	}
}

// ErrUnknown is wrapped by Lookup for a name no destination is registered under.
var ErrUnknown = errors.New("unknown destination")

// Lookup finds a destination by name.
func Lookup(name string) (deliver.Registration, error) {
	for _, r := range All() {
		if r.Name == name {
			return r, nil
		}
	}
	return deliver.Registration{}, fmt.Errorf("%w %q: the destinations are %s", ErrUnknown, name, strings.Join(Names(), ", "))
}

// Names lists the registered names.
func Names() []string {
	var out []string
	for _, r := range All() {
		out = append(out, r.Name)
	}
	return out
}

// Enabled lists the destinations the account routes facts to.
func Enabled(a accounts.Account) []deliver.Registration {
	var out []deliver.Registration
	for _, r := range All() {
		if r.Enabled(a) {
			out = append(out, r)
		}
	}
	return out
}

// Check reports every registered destination's objections to the account's settings.
func Check(a accounts.Account) error {
	var errs []error
	for _, r := range All() {
		if err := r.Check(a); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Sections are the account file's sections the destinations own (accounts.Repo.WithSections).
func Sections() []accounts.Section {
	var out []accounts.Section
	for _, r := range All() {
		if r.Settings != nil {
			out = append(out, *r.Settings)
		}
	}
	return out
}

// Queues is the whole queue topology: the fixed queues with each registered destination's
// queue, so a new destination's queue exists once it is registered here.
func Queues() queue.Topology {
	var specs []queue.Spec
	for _, r := range All() {
		specs = append(specs, r.Queue)
	}
	return queue.Layout(specs...)
}
