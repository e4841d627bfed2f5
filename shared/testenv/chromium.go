package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"
)

const chromiumInstall = "run scripts/install-chromium.sh (apt-get install chromium), or set CHROMIUM to a Chromium or Chrome binary"

// Chromium returns the path of the Chromium binary that browser tests drive. It skips the test
// (fails it under CI=true) when there is none.
func Chromium(t testing.TB) string {
	t.Helper()
	path, err := FindChromium()
	if err != nil {
		Missing(t, "Chromium", fmt.Sprintf("%v; %s", err, chromiumInstall))
	}
	return path
}

// FindChromium looks for a Chromium binary: $CHROMIUM when set (a path or a name on PATH),
// then the usual names on PATH, then /usr/bin/chromium, where Debian's package puts it even when
// /usr/bin is not on a test runner's PATH.
func FindChromium() (string, error) {
	if v := os.Getenv("CHROMIUM"); v != "" {
		path, err := exec.LookPath(v)
		if err != nil {
			// A wrong explicit choice should not silently fall back to another browser.
			return "", fmt.Errorf("CHROMIUM=%s is not an executable: %w", v, err)
		}
		return path, nil
	}
	// Debian's package, other distributions' name for it, and Google's build, which drives the
	// same way.
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(name); err == nil {
			return path, nil
		}
	}
	const debian = "/usr/bin/chromium"
	if path, err := exec.LookPath(debian); err == nil {
		return path, nil
	}
	return "", errors.New("no chromium, chromium-browser or google-chrome on PATH, nor " + debian)
}
