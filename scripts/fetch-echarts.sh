#!/usr/bin/env bash
# Refreshes the console's copy of Apache ECharts (shared/console/assets/echarts.min.js.gz) from
# the npm registry. The file is committed, so a clean clone builds without npm or a network;
# run this only to check the copy or to move to another version (change VERSION and INTEGRITY
# together, from `npm view echarts@VERSION dist.integrity`).
#
# The copy is dist/echarts.min.js of the pinned release, gzipped (-9 -n, so the result does not
# depend on when it was made) and served by the console as it is to browsers that accept gzip.
# Its licence and notice sit beside it (ECHARTS-LICENSE, ECHARTS-NOTICE).
set -euo pipefail

VERSION=6.1.0
INTEGRITY='sha512-q0yaFPggC9FUdsWH4blavRWFmxdrIodbkoKNAjJudAI6CA9gNPxHtV2RcZNEepZVlk4yvBYkOkbk6HIVpIyHZA=='
# sha256 of dist/echarts.min.js in that release, checked after unpacking.
MIN_SHA256=b66b25aeb4df84e33199dc21694014d336d222cbd9deb0e5a7c14bd6aa0d0fd0

root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/shared/console/assets"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

command -v npm >/dev/null || { echo "fetch-echarts: npm is needed (Node.js 18 or later)" >&2; exit 1; }
(cd "$work" && npm pack --silent "echarts@$VERSION" >/dev/null)
tgz="$work/echarts-$VERSION.tgz"
got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
if [ "$got" != "$INTEGRITY" ]; then
	echo "fetch-echarts: echarts@$VERSION from the registry has integrity $got, expected $INTEGRITY" >&2
	exit 1
fi
tar -xzf "$tgz" -C "$work" package/dist/echarts.min.js package/LICENSE package/NOTICE
echo "$MIN_SHA256  $work/package/dist/echarts.min.js" | sha256sum -c --quiet
gzip -9 -n -c "$work/package/dist/echarts.min.js" >"$dest/echarts.min.js.gz"
cp "$work/package/LICENSE" "$dest/ECHARTS-LICENSE"
cp "$work/package/NOTICE" "$dest/ECHARTS-NOTICE"
echo "shared/console/assets/echarts.min.js.gz: Apache ECharts $VERSION ($(wc -c <"$dest/echarts.min.js.gz") bytes gzipped)"
