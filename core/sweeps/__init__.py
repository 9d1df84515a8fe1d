"""Optuna searches over the settings: what may vary (space), the study in its journal (study),
and the runner that trains every trial as an ordinary queued, stored run (runner)."""
