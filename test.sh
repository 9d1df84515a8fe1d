#!/usr/bin/env bash
# Set up (venv, dev requirements, Debian's dataset and Chromium) and run the whole test suite.
# Extra arguments go to pytest: ./test.sh -k store
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh --dev
mkdir -p test-artifacts
exec .venv/bin/python -m pytest tests "$@"
