"""The run store's SQLite index: its table, the columns added since the first release, and how a
finished run becomes a row. Every column comes from the run's own files, so the index can always
be rebuilt from the run folders.
"""

from __future__ import annotations

import sqlite3

from core.spec.results import RunResult

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    dataset TEXT NOT NULL,
    architecture TEXT NOT NULL,
    params INTEGER NOT NULL,
    epochs INTEGER NOT NULL,
    test_accuracy REAL NOT NULL,
    test_loss REAL NOT NULL,
    train_seconds REAL NOT NULL,
    images_per_second REAL NOT NULL,
    device TEXT NOT NULL,
    data_source TEXT NOT NULL,
    train_size INTEGER NOT NULL,
    config_json TEXT NOT NULL
)
"""
# Columns added after the first release: an older index gets them with ALTER TABLE ADD COLUMN.
ADDED_COLUMNS = {
    "backend": "TEXT NOT NULL DEFAULT ''",
    "data_id": "TEXT NOT NULL DEFAULT ''",
    "owner": "TEXT NOT NULL DEFAULT ''",  # the session that started it, on a shared server
    "size_bytes": "INTEGER NOT NULL DEFAULT 0",  # the run folder on disk
    "used_at": "REAL NOT NULL DEFAULT 0",  # last save or get(): the eviction order
    "executor": "TEXT NOT NULL DEFAULT 'local'",  # where it trained: local or ray
}
# What a row of an index that could not be migrated (a read-only store) reads as.
ROW_DEFAULTS = {
    "backend": "",
    "data_id": "",
    "owner": "",
    "size_bytes": 0,
    "used_at": 0.0,
    "executor": "local",
}


def is_garbage(exc: sqlite3.DatabaseError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code in (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT) or (
        code is None and ("not a database" in str(exc) or "malformed" in str(exc))
    )


def row_of(result: RunResult, size: int, used_at: float) -> dict:
    return {
        "run_id": result.run_id,
        "created_at": result.created_at,
        "dataset": result.config.dataset,
        "architecture": result.config.describe(),
        "params": result.params,
        "epochs": result.epochs_trained,
        "test_accuracy": result.test_accuracy,
        "test_loss": result.test_loss,
        "train_seconds": result.train_seconds,
        "images_per_second": result.images_per_second,
        "device": result.device,
        "data_source": result.data_source,
        "train_size": result.train_size,
        "config_json": result.config.to_json(),
        "backend": result.backend,
        "executor": result.executor or "local",
        "data_id": result.data_id,
        "owner": "",
        "size_bytes": size,
        "used_at": used_at,
    }


def insert_statement(row: dict) -> tuple[str, tuple]:
    columns = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    return f"INSERT INTO runs ({columns}) VALUES ({marks})", tuple(row.values())
