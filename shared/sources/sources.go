// Package sources is the one list of cartrelay's sources. Each source package offers its
// source.Registration; this list is the only place that names them all, and the webhook,
// ingest, the schedule and the poll consumer read it. A name that is not registered is an
// error, never a silent false.
package sources

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cartrelay/cartrelay/shared/source"
	"github.com/cartrelay/cartrelay/shared/thrivecart/tcsource"
	"github.com/cartrelay/cartrelay/shared/ultracart/ucsource"
)

// All lists the registered sources, in the order pages and logs show them.
func All() []source.Registration {
	return []source.Registration{
		ucsource.Registration(),
		tcsource.Registration(),
	}
}

// ErrUnknown is wrapped by Lookup for a name no source is registered under.
var ErrUnknown = errors.New("unknown source")

// Lookup finds a source by name.
func Lookup(name string) (source.Registration, error) {
	for _, r := range All() {
		if string(r.Name) == name {
			return r, nil
		}
	}
	return source.Registration{}, fmt.Errorf("%w %q: the sources are %s", ErrUnknown, name, strings.Join(Names(), ", "))
}

// Names lists the registered names.
func Names() []string {
	var out []string
	for _, r := range All() {
		out = append(out, string(r.Name))
	}
	return out
}
