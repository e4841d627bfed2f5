package cli

import (
	"context"
	"fmt"
	"runtime/debug"
	"strings"
)

// Version is what `cartrelay version` prints: the module version the binary was built as and
// the source revision, as the Go toolchain stamps them into every binary.
type Version struct {
	Version string `json:"version"`
	// Revision is the commit built, Modified whether the work tree had uncommitted changes;
	// both are empty for a build outside a repository (or with -buildvcs=false).
	Revision string `json:"revision,omitempty"`
	Time     string `json:"time,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"go"`
}

func (v Version) String() string {
	s := v.Version
	if v.Revision != "" {
		s += " (" + v.Revision
		if v.Modified {
			s += ", modified"
		}
		if v.Time != "" {
			s += ", " + v.Time
		}
		s += ")"
	}
	return s + " " + v.Go
}

func buildVersion(io IO) Version {
	read := io.BuildInfo
	if read == nil {
		read = debug.ReadBuildInfo
	}
	bi, ok := read()
	if !ok {
		return Version{Version: "unknown", Go: "unknown"}
	}
	v := Version{Version: bi.Main.Version, Go: bi.GoVersion}
	if v.Version == "" {
		// A test binary has no main module version.
		v.Version = "(devel)"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

func cmdVersion(_ context.Context, c *ctx2, args []string) error {
	format, args, err := c.format(args, "text")
	if err != nil {
		return err
	}
	if _, err := positional(args, 0, "no arguments"); err != nil {
		return err
	}
	v := buildVersion(c.io)
	if format == "text" {
		_, err := fmt.Fprintln(c.io.Out, "cartrelay "+strings.TrimSpace(v.String()))
		return err
	}
	return writeJSON(c.io.Out, v)
}
