#!/usr/bin/env bash
# Builds AWS's Lambda Runtime Interface Emulator (aws-lambda-rie) from source with the go
# command, pinned, into .cache/tools/ for the end-to-end test of the real bootstraps
# (deploy/runtime_test.go). The emulator is the Lambda Runtime API that AWS ships in its base
# images; building it for this machine avoids downloading a prebuilt binary.
#
# Prints the emulator's path as its only line on stdout (progress goes to stderr). Running it
# again only checks that the binary is there.
set -euo pipefail

MODULE="github.com/aws/aws-lambda-runtime-interface-emulator"
# The only version of the module that the Go module proxy serves (its v1.x tags are not).
VERSION="v0.0.0-20261030222936-bef5c4ba774d"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$root/.cache/tools/aws-lambda-rie@$VERSION"
bin="$dest/aws-lambda-rie"

if [[ -x "$bin" ]]; then
	echo "$bin"
	exit 0
fi

fail() {
	echo "fetch-rie: $*" >&2
	exit 1
}

command -v go >/dev/null 2>&1 || fail "go is not on PATH; install Go 1.26, then run this script again"

# Build into a staging folder and move the binary into place at the end, so an interrupted run
# never leaves a half-written file that a later run would take for a complete one.
mkdir -p "$root/.cache/tools"
stage="$(mktemp -d "$root/.cache/tools/.aws-lambda-rie.XXXXXX")"
trap 'rm -rf "$stage"' EXIT

echo "Building aws-lambda-rie $VERSION with go install ..." >&2
# The emulator is a module of its own: GOFLAGS from this module (-mod=vendor and the like)
# must not apply to it. CGO is off so that the binary does not depend on this machine's libc.
if ! GOBIN="$stage" GOFLAGS=-buildvcs=false CGO_ENABLED=0 go install "$MODULE/cmd/aws-lambda-rie@$VERSION" >"$stage/build.log" 2>&1; then
	cat "$stage/build.log" >&2
	fail "go install $MODULE/cmd/aws-lambda-rie@$VERSION failed (is the Go module proxy reachable?)"
fi
[[ -x "$stage/aws-lambda-rie" ]] || fail "go install ran but built no aws-lambda-rie"

mkdir -p "$dest"
# Two test binaries may build at the same time; whichever finishes second keeps the first copy.
if [[ ! -x "$bin" ]]; then
	mv "$stage/aws-lambda-rie" "$bin.tmp.$$"
	mv "$bin.tmp.$$" "$bin"
fi
echo "aws-lambda-rie installed in $dest" >&2
echo "$bin"
