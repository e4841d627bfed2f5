//go:build !unix

package operator

// canLock is false where the system offers no flock: two serves on one data directory are then
// the operator's to avoid, and messages in flight are left to their visibility timeouts.
const canLock = false

func lockServe(string) (func(), error) { return func() {}, nil }
