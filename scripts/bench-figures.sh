#!/usr/bin/env bash
# Prints the figures the README quotes, and fails when a Lambda bootstrap grows past the limit:
#   - the size of every bootstrap as deployed (linux/arm64, stripped, -tags lambda.norpc);
#   - each function's start on this machine: from process start until it asks a fake Lambda
#     Runtime API for its first invocation (BenchmarkInit in deploy/).
#
# Usage: scripts/bench-figures.sh [BENCH_OUTPUT]
# BENCH_OUTPUT is the output of a `go test -bench` run that included BenchmarkInit (make bench
# passes it); without it, the benchmark is run here.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

limit_mb=10
bench_output="${1:-}"

cpu="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)"
echo "== cartrelay figures: $(date -u +%Y-%m-%d), $(go env GOVERSION), $(go env GOOS)/$(go env GOARCH), ${cpu:-unknown CPU} x$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo '?')"

echo
echo "Lambda bootstraps (linux/arm64, -tags lambda.norpc -trimpath -ldflags='-s -w'; limit $limit_mb MB):"
rm -f build/*/bootstrap
make --no-print-directory -s build >/dev/null
over=0
for bin in build/*/bootstrap; do
	name="$(basename "$(dirname "$bin")")"
	bytes="$(wc -c <"$bin")"
	gz="$(gzip -9 -c "$bin" | wc -c)"
	mb="$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1e6 }')"
	gzmb="$(awk -v b="$gz" 'BEGIN { printf "%.1f", b / 1e6 }')"
	flag=""
	if ((bytes > limit_mb * 1000000)); then
		flag="  OVER THE $limit_mb MB LIMIT"
		over=1
	fi
	printf '  %-10s %6s MB  (%s MB gzipped)%s\n' "$name" "$mb" "$gzmb" "$flag"
done

echo
echo "Start to first invocation request, $(go env GOOS)/$(go env GOARCH) build on this machine, fake Runtime API, no network:"
if [[ -z "$bench_output" ]] || ! grep -q '^BenchmarkInit/' "$bench_output"; then
	bench_output="$(mktemp)"
	trap 'rm -f "$bench_output"' EXIT
	go test -run '^$' -bench '^BenchmarkInit$' -benchtime 50x ./deploy >"$bench_output" 2>&1 || {
		cat "$bench_output" >&2
		exit 1
	}
fi
awk '
/^BenchmarkInit\// {
	name = $1; sub(/^BenchmarkInit\//, "", name); sub(/-[0-9]+$/, "", name)
	for (i = 2; i < NF; i++) {
		if ($(i + 1) == "ms-p50") p50 = $i
		if ($(i + 1) == "ms-p90") p90 = $i
		if ($(i + 1) == "MB-rss") rss = $i
		if ($(i + 1) == "ms-cpu-p50") cpu = $i
	}
	printf "  %-26s p50 %5.1f ms   p90 %5.1f ms   CPU p50 %5.1f ms   RSS %4.1f MB   (%s starts)\n", name, p50, p90, cpu, rss, $2
	found = 1
}
END { if (!found) { print "  no BenchmarkInit results" > "/dev/stderr"; exit 1 } }
' "$bench_output"

if ((over)); then
	echo
	echo "bench-figures: a bootstrap is over the $limit_mb MB limit. Build it with -ldflags=-dumpdep and look for" >&2
	echo "  <ReflectMethod>: a dependency calling reflect's Method or MethodByName with a computed name makes the" >&2
	echo "  linker keep every exported method of every reachable type." >&2
	exit 1
fi
