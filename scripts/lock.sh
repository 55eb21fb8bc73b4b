#!/usr/bin/env bash
# Regenerate requirements/test.lock: every package the README's test command installs,
# pinned with hashes. Run it after any change to the dependencies in pyproject.toml,
# then run the suite from the new lock before committing both files together.
#
#   bash scripts/lock.sh            # keep existing pins where they still satisfy pyproject
#   bash scripts/lock.sh --upgrade  # move every pin to the newest compatible release
set -euo pipefail
cd "$(dirname "$0")/.."
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
python3 -m venv "$tools/venv"
"$tools/venv/bin/pip" install -q pip-tools
cd requirements
PIP_FIND_LINKS= "$tools/venv/bin/pip-compile" -q --generate-hashes --allow-unsafe \
    --no-emit-find-links --extra test --strip-extras \
    --output-file test.lock "$@" ../pyproject.toml
