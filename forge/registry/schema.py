"""Registry schema and its migrations, applied in order by `PRAGMA user_version`."""
from __future__ import annotations

import sqlite3

MIGRATIONS: list[str] = [
    # 1: the tables of DESIGN.md section 3
    """
    CREATE TABLE runs (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, config TEXT NOT NULL, status TEXT NOT NULL,
        created REAL NOT NULL, ended REAL);
    CREATE TABLE phase_runs (
        run TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, phase TEXT NOT NULL,
        attempt INTEGER NOT NULL, status TEXT NOT NULL, started REAL, ended REAL, error TEXT,
        summary TEXT, PRIMARY KEY (run, phase, attempt));
    CREATE TABLE models (
        id TEXT PRIMARY KEY, run TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        phase TEXT NOT NULL, name TEXT NOT NULL, path TEXT NOT NULL, sha256 TEXT NOT NULL,
        bytes INTEGER NOT NULL, params INTEGER NOT NULL, metadata TEXT NOT NULL, created REAL NOT NULL);
    CREATE TABLE lineage (
        child TEXT NOT NULL REFERENCES models(id) ON DELETE CASCADE, parent TEXT NOT NULL,
        method TEXT NOT NULL, PRIMARY KEY (child, parent));
    CREATE TABLE metrics (
        run TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, phase TEXT NOT NULL,
        model TEXT NOT NULL DEFAULT '', step INTEGER NOT NULL, name TEXT NOT NULL,
        value REAL, time REAL NOT NULL, PRIMARY KEY (run, phase, model, step, name));  -- NULL: NaN
    CREATE TABLE handoffs (
        run TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, from_phase TEXT NOT NULL,
        to_phase TEXT NOT NULL, contract TEXT NOT NULL, result TEXT NOT NULL, time REAL NOT NULL,
        PRIMARY KEY (run, from_phase, to_phase));
    CREATE INDEX models_by_run ON models(run, phase);
    CREATE INDEX metrics_by_name ON metrics(run, name);
    """,
    # 2: the digests of a run's own files (corpus.json, tokenizer.json), which resume verifies
    """
    CREATE TABLE run_files (
        run TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, name TEXT NOT NULL,
        sha256 TEXT NOT NULL, PRIMARY KEY (run, name));
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database to `SCHEMA_VERSION`; each migration runs in its own transaction."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise RuntimeError(f"registry schema version {version} is newer than this code "
                           f"({SCHEMA_VERSION}); upgrade agent-forge")
    for number in range(version, SCHEMA_VERSION):
        with conn:
            conn.executescript("BEGIN;" + MIGRATIONS[number] + f"PRAGMA user_version = {number + 1};")
    return SCHEMA_VERSION
