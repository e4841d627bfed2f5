// Package sources is the one list of cartrelay's sources. Each source package offers its
// source.Registration; All is the list of them, and the webhook, ingest, the schedule and the
// poll consumer read it. Beside it, Connecting gives the connect function the same
// registrations' connect parts alone (a test holds the two together). A name that is not
// registered is an error, never a silent false.
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

// Connecting lists the part of each registration the connect function reads (its name, label
// and connect), in All's order. It is the list the connect function looks sources up in, so that
// it links none of their decoders and pollers; TestConnectingMatchesAll holds it to All.
func Connecting() []source.Registration {
	return []source.Registration{
		ucsource.Connecting(),
		tcsource.Connecting(),
	}
}

// ErrUnknown is wrapped by Lookup for a name no source is registered under.
var ErrUnknown = errors.New("unknown source")

// Lookup finds a source by name.
func Lookup(name string) (source.Registration, error) {
	return lookup(All(), name)
}

// LookupConnecting finds a source's Connecting part by name.
func LookupConnecting(name string) (source.Registration, error) {
	return lookup(Connecting(), name)
}

func lookup(regs []source.Registration, name string) (source.Registration, error) {
	for _, r := range regs {
		if string(r.Name) == name {
			return r, nil
		}
	}
	return source.Registration{}, fmt.Errorf("%w %q: the sources are %s", ErrUnknown, name, strings.Join(names(regs), ", "))
}

// Names lists the registered names.
func Names() []string {
	return names(All())
}

func names(regs []source.Registration) []string {
	var out []string
	for _, r := range regs {
		out = append(out, string(r.Name))
	}
	return out
}
