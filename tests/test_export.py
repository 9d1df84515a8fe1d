"""The exported plain-Keras script runs on its own and matches the playground's run."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys

from core.config import PRESETS, LayerSpec, RunConfig
from core.export import reproduce_script
from core.training import train


def test_exported_script_reproduces_the_run(tmp_path, full_data):
    config = PRESETS["seed"].replace(epochs=1, train_size=5000)
    result = train(config, full_data)
    script = tmp_path / "reproduce.py"
    script.write_text(reproduce_script(config, result.run_id))
    out = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-1000:]
    accuracy = float(re.search(r"test accuracy ([0-9.]+)", out.stdout).group(1))
    assert abs(accuracy - result.test_accuracy) < 0.03


def test_every_option_exports_valid_python():
    config = RunConfig(
        layers=(
            LayerSpec(kind="conv", filters=8, kernel_size=5, dropout=0.1),
            LayerSpec(units=64, activation="gelu", dropout=0.2),
        ),
        batch_norm=True,
        augment_flip=True,
        augment_translate=0.1,
        optimizer="adamw",
        weight_decay=1e-4,
        validation_split=0.1,
        early_stopping=2,
    )
    source = reproduce_script(config)
    ast.parse(source)
    for fragment in ("Conv2D(8, 5", "RandomFlip", "AdamW", "EarlyStopping", "Dropout(0.2)"):
        assert fragment in source
