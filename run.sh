#!/usr/bin/env bash
# Set up (first time only) and start the playground: ./run.sh [streamlit options]
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
if [ ! -d /usr/share/datasets/fashion-mnist ] && [ -z "${PLAYGROUND_DATA_DIR:-}" ]; then
  echo "note: the app will use its bundled sample; for the full 70,000 images run" \
       "'sudo apt-get install dataset-fashion-mnist'" >&2
fi
exec .venv/bin/python -m streamlit run streamlit_app.py "$@"
