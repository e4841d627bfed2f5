#!/usr/bin/env bash
# Lints template.yaml with cfn-lint (1.x validates the SAM transform too).
#
# cfn-lint is looked up under pyenv first (a bare CI shell may not have the pyenv shims on
# PATH), then on PATH. When it is missing, CI=true fails; elsewhere the lint is skipped with
# one line saying what to install.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
template="${1:-$root/template.yaml}"

cfn_lint=""
for candidate in $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/*/bin/cfn-lint 2>/dev/null | sort -V -r); do
	if [[ -x "$candidate" ]]; then
		cfn_lint="$candidate"
		break
	fi
done
if [[ -z "$cfn_lint" ]] && command -v cfn-lint >/dev/null 2>&1 && cfn-lint --version >/dev/null 2>&1; then
	cfn_lint="$(command -v cfn-lint)"
fi

if [[ -z "$cfn_lint" ]]; then
	if [[ "${CI:-}" == "true" ]]; then
		echo "cfn-lint not found, and CI=true requires the template lint; install cfn-lint 1.x (pip install cfn-lint)" >&2
		exit 1
	fi
	echo "skipping template lint: cfn-lint not found; install cfn-lint 1.x (pip install cfn-lint)"
	exit 0
fi

echo "$("$cfn_lint" --version) ($cfn_lint)"
# Any finding fails, warnings included.
"$cfn_lint" "$template"
echo "${template#"$root"/}: no findings"
