//go:build unix

package operator

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// canLock says a serve can hold its data directory for itself.
const canLock = true

// ServeLockFileName is the file a running serve holds locked in its data directory.
const ServeLockFileName = "serve.lock"

// lockServe takes the data directory's serve lock, or says which process holds it. The kernel
// drops the lock when the process ends however it ends, so a serve killed with SIGKILL leaves
// nothing to clean up, and the next one knows that what the dead one had received is nobody's.
func lockServe(dataDir string) (unlock func(), err error) {
	path := filepath.Join(dataDir, ServeLockFileName)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			who := "another process"
			if pid := strings.TrimSpace(string(holder)); pid != "" {
				who = "process " + pid
			}
			return nil, fmt.Errorf("another cartrelay serve (%s) is running on the data directory %s; stop it first, or give this one its own --data", who, dataDir)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() {
		_ = f.Truncate(0)
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
