#!/usr/bin/env bash
# Every preset through the real CLI on a GPU machine, on JAX and on PyTorch; whole-process times.
#
# For the `device` tool's machine (PyTorch and JAX, no TensorFlow): Keras and its two missing
# needs travel as wheels in .whl/, Fashion-MNIST's four files in .devdata/ (see the README's
# "GPU figures"). Prints one line per run: backend, preset, seconds for the whole process, and
# the CLI's JSON answer. Usage: bash bench/gpu_presets.sh [per-run timeout seconds] [backend:preset ...]
set -u
limit=${1:-150}
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
export PLAYGROUND_DATA_DIR=${PLAYGROUND_DATA_DIR:-$PWD/.devdata}
export PLAYGROUND_HOME=${PLAYGROUND_HOME:-$(mktemp -d)}
export PYTHONUNBUFFERED=1
nvidia-smi -L 2>/dev/null
python3 -c 'import sys, keras, jax; print("python", sys.version.split()[0], "keras", keras.__version__, "jax", jax.__version__)' 2>/dev/null
python3 -c 'import torch; print("torch", torch.__version__)' 2>/dev/null
lscpu | grep -m1 'Model name'
run() {  # backend preset
    local start end
    start=$EPOCHREALTIME
    answer=$(timeout "$limit" python3 -m core train --preset "$2" --backend "$1" --json 2>/tmp/err)
    code=$?
    end=$EPOCHREALTIME
    printf '%s %s %.1f s exit %s %s\n' "$1" "$2" "$(awk "BEGIN{print $end - $start}")" "$code" "$answer"
    [ "$code" = 0 ] || tail -5 /tmp/err
}
shift || true
if [ $# -gt 0 ]; then
    for pair in "$@"; do run "${pair%%:*}" "${pair#*:}"; done
    exit 0
fi
run auto seed
for preset in fast cnn best; do run jax "$preset"; done
for preset in seed fast cnn best; do run torch "$preset"; done
