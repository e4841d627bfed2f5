#!/usr/bin/env bash
# Runs libphonenumber's own test suite (github.com/nyaruka/phonenumbers v1.8.1, which the
# module proxy serves) against cartrelay's copy in third_party/phonenumbers. The suite is not
# kept in the copy: it needs testify, and parts of it test the lookups the copy leaves out.
# In a scratch copy it deletes those tests and adapts three lines to the copy's plain
# messages; CARTRELAY.md there says why.
#
# Usage: scripts/test-phonenumbers-upstream.sh [go test flags]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version=v1.8.1
upstream="$(cd "$root" && go mod download -json "github.com/nyaruka/phonenumbers@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
if [ -z "$upstream" ] || [ ! -d "$upstream" ]; then
	echo "could not download github.com/nyaruka/phonenumbers@$version (is the module proxy reachable?)" >&2
	exit 1
fi

work="$(mktemp -d)"
trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT
cp -r "$root/third_party/phonenumbers/." "$work/"
cp "$upstream"/*_test.go "$upstream/go.mod" "$upstream/go.sum" "$work/"
cp "$upstream"/testdata/* "$work/testdata/"
chmod -R u+w "$work"
cd "$work"

# The tests of the carrier, geocoding and time-zone lookups, which the copy does not have.
python3 - phonenumberutil_adhoc_test.go <<'EOF'
import re, sys
path = sys.argv[1]
drop = {"TestGetTimeZonesForPrefix", "TestGetCarrierForNumber", "TestGetCarrierWithPrefixForNumber",
        "TestGetCarrierWithPrefixForNumberWithConcurrency", "TestGetGeocodingForNumber",
        "TestGetSafeCarrierDisplayNameForNumber", "BenchmarkGetCarrierWithPrefixForNumber"}
lines, out, i = open(path).read().split("\n"), [], 0
while i < len(lines):
    m = re.match(r"^func (\w+)\(", lines[i])
    if m and m.group(1) in drop:
        while out and out[-1].startswith("//"):
            out.pop()
        while lines[i] != "}":
            i += 1
        i += 1
        continue
    out.append(lines[i])
    i += 1
text = "\n".join(out).replace('\t"sync"\n', "", 1)
# The copy's messages are plain structs: no proto.Merge, proto.Equal or String method.
text = text.replace("\tproto.Merge(deNumberWithExtn, deNumber)", "\t*deNumberWithExtn = *deNumber")
text = text.replace('t.Errorf("[test %d:numFmt] %d (%s) != %d\\n"', 't.Errorf("[test %d:numFmt] %d (%v) != %d\\n"')
open(path, "w").write(text)
EOF
sed -i 's/proto\.Equal(/reflect.DeepEqual(/; 0,/^import (/s//import (\n\t"reflect"/' phonenumberutil_test.go
gofmt -w ./*_test.go

go test -count=1 "$@" .
