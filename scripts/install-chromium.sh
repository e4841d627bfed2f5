#!/usr/bin/env bash
# Makes sure Chromium is installed for the connect flow's browser test (shared/app), which
# drives it headless. A Chromium or Chrome already on the machine is kept (CHROMIUM may name
# one); otherwise Debian's `chromium` package is installed with apt-get, as root or through
# passwordless sudo. The package lists are refreshed only when the install fails for want of
# them, since `apt-get update` is the slow part on a machine whose lists are current.
#
# Prints one line on success; on failure, the reason and the tail of apt-get's output.
set -euo pipefail

fail() {
	echo "install-chromium: $*" >&2
	exit 1
}

# find_chromium prints the first Chromium it finds, in the order shared/testenv looks after
# $CHROMIUM.
find_chromium() {
	local c
	for c in chromium chromium-browser google-chrome /usr/bin/chromium; do
		if command -v "$c" 2>/dev/null; then
			return 0
		fi
	done
	return 1
}

# version prints what the binary says of itself; Debian's launcher script also complains on
# stderr about its environment, which is noise here.
version() {
	"$1" --version 2>/dev/null | head -n 1 || true
}

if [[ -n "${CHROMIUM:-}" ]]; then
	# The test does not fall back from an explicit choice, so neither does this.
	bin="$(command -v "$CHROMIUM")" || fail "CHROMIUM=$CHROMIUM is not an executable; unset it to use Debian's chromium"
	echo "Chromium present: $bin ($(version "$bin"))"
	exit 0
fi
if bin="$(find_chromium)"; then
	echo "Chromium present: $bin ($(version "$bin"))"
	exit 0
fi

command -v apt-get >/dev/null 2>&1 ||
	fail "no Chromium found and no apt-get to install it; install Chromium or Chrome, or set CHROMIUM to its binary"

as_root=()
if [[ "$(id -u)" != 0 ]]; then
	command -v sudo >/dev/null 2>&1 ||
		fail "no Chromium found; installing it needs root (run: apt-get install chromium as root)"
	# -n: never stop at a password prompt; a test run is no place to ask for one.
	as_root=(sudo -n)
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT

apt() {
	"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "$@" >>"$log" 2>&1
}

# The sandbox helper, chromium's only recommendation, goes unused: the test runs Chromium with
# --no-sandbox.
install_chromium() {
	apt install -y -q --no-install-recommends chromium
}

echo "Installing Chromium (apt-get install chromium) ..."
if ! install_chromium; then
	# Missing lists (a fresh container) or stale ones (the archive moved on and answers 404)
	# are the failures an update cures; anything else would only fail again more slowly.
	if ! grep -qE "Unable to locate package|has no installation candidate|maybe run apt-get update|Failed to fetch|404 +Not Found" "$log"; then
		tail -n 20 "$log" >&2
		fail "apt-get install chromium failed"
	fi
	if ! apt update -q || ! install_chromium; then
		tail -n 20 "$log" >&2
		fail "apt-get update && apt-get install chromium failed"
	fi
fi

bin="$(find_chromium)" || fail "apt-get installed chromium, but no chromium binary is on PATH or in /usr/bin"
echo "Chromium installed: $bin ($(version "$bin"))"
