#!/usr/bin/env bash
# Set up (venv, dev requirements, Debian's dataset and Chromium) and run the whole test suite.
# Extra arguments go to pytest: ./test.sh -k store
# ./test.sh --quick [pytest arguments]: the daily tier, every test not marked slow (-m "not slow";
# the marker is described in pyproject.toml): no browser, no Ray cluster, no long trainings.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh --dev
mkdir -p test-artifacts
tier=()
args=()
for arg in "$@"; do
  if [ "$arg" = "--quick" ]; then
    tier=(-m "not slow")
  else
    args+=("$arg")
  fi
done
exec .venv/bin/python -m pytest tests ${tier[@]+"${tier[@]}"} ${args[@]+"${args[@]}"}
