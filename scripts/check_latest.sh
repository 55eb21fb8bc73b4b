#!/usr/bin/env bash
# See dependency drift coming: install hornet with the NEWEST release of every dependency
# that pyproject.toml allows (ignoring requirements/test.lock), then run the test suite.
#
# Run it before moving the lock (scripts/lock.sh --upgrade), before a release, and when a
# dependency publishes a new major version. A failure here is a user's future failure:
# fix the code, or add an upper bound with a comment in pyproject.toml saying why.
#
#   bash scripts/check_latest.sh [pytest args...]
set -uo pipefail
cd "$(dirname "$0")/.."
venv=.venv-latest          # left in place afterwards, to rerun or inspect a failure
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip >/dev/null
PIP_FIND_LINKS= "$venv/bin/pip" install -q --upgrade --upgrade-strategy eager --no-cache-dir \
    -e '.[test]' || exit 2
# Users get the newest release of every runtime dependency, even where a test-only pin
# (pyln-proto pins coincurve exactly) would hold it back: move those too.
mapfile -t runtime < <("$venv/bin/python" -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))')
PIP_FIND_LINKS= "$venv/bin/pip" install -q --upgrade --no-cache-dir "${runtime[@]}" 2>&1 \
    | grep -v "dependency resolver\|which is incompatible" || true
echo "== newest releases installed (pins differing from requirements/test.lock):"
"$venv/bin/pip" freeze --exclude-editable | tr 'A-Z_' 'a-z-' | sort > "$venv/latest.txt"
grep -E '^[a-z0-9.-]+==' requirements/test.lock | sed 's/ .*//' | tr 'A-Z_' 'a-z-' | sort \
    > "$venv/locked.txt"
comm -13 "$venv/locked.txt" "$venv/latest.txt" | sed 's/^/   /'
echo "== test suite against the newest releases"
"$venv/bin/python" -m pytest -q "$@"
status=$?
echo "== check_latest: pytest exit $status"
exit $status
