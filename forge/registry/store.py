"""The registry: runs, phase attempts, models with lineage, metrics and handoffs in SQLite.

One writer (the `RegistryActor`) owns a read-write store; readers such as `forge status` open the
file read-only. WAL mode lets readers and the writer work at once (DESIGN.md section 3).
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Iterable

from forge.registry.schema import migrate

PHASE_STATES = ("pending", "running", "done", "not_adopted", "failed", "interrupted")


class RegistryError(RuntimeError):
    """The registry file is missing, unreadable, or a row the caller named does not exist."""


def corrupt_registry(path: Path, err: Exception) -> str:
    """One line for a registry whose pages are damaged, saying how to check and restore it."""
    return (f"registry {path} is damaged ({err}); check it with `sqlite3 {path} "
            f"'PRAGMA integrity_check'`, then restore a copy (for a URI runs dir: move this file "
            f"away and forge restores registry-snapshot.db from the storage)")


def _connect(path: Path, readonly: bool) -> sqlite3.Connection:
    if readonly:
        if not path.is_file():
            raise RegistryError(f"no registry at {path}")
        # A read-only directory (or mount) cannot hold the WAL index a reader creates; nobody
        # can write there either, so the file is opened as immutable.
        immutable = "" if os.access(path.parent, os.W_OK) else "&immutable=1"
        conn = sqlite3.connect(f"file:{path}?mode=ro{immutable}", uri=True, timeout=30,
                               check_same_thread=False)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=30, check_same_thread=False)
        # WAL is set once, before anything else uses the file (RAY_NOTES.md, SQLite section).
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.row_factory = sqlite3.Row
    return conn


class RegistryStore:
    """Plain sqlite3 access to one registry file; every SQL statement is parameterised."""

    def __init__(self, path: str | Path, readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        self._lock = threading.Lock()
        try:
            self.conn = _connect(self.path, readonly)
            if not readonly:
                migrate(self.conn)
            elif self.conn.execute("PRAGMA user_version").fetchone()[0] == 0:
                raise RegistryError(f"registry {self.path} has no tables yet (being created?)")
        except (sqlite3.DatabaseError, RuntimeError) as err:
            raise RegistryError(f"cannot open registry {self.path}: {err}") from err

    def close(self) -> None:
        self.conn.close()

    def _write(self, sql: str, args: Iterable[Any] = ()) -> sqlite3.Cursor:
        with self._lock, self.conn:
            return self.conn.execute(sql, tuple(args))

    def _rows(self, sql: str, args: Iterable[Any] = ()) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self.conn.execute(sql, tuple(args)).fetchall()]

    # runs -----------------------------------------------------------------------------------
    def create_run(self, run_id: str, name: str, config_yaml: str) -> None:
        """Insert a run in state 'running'."""
        self._write("INSERT INTO runs (id, name, config, status, created) VALUES (?, ?, ?, ?, ?)",
                    (run_id, name, config_yaml, "running", time.time()))

    def set_run_status(self, run_id: str, status: str) -> None:
        ended = None if status == "running" else time.time()
        cur = self._write("UPDATE runs SET status = ?, ended = ? WHERE id = ?", (status, ended, run_id))
        if cur.rowcount == 0:
            raise RegistryError(f"no run {run_id!r}")

    def get_run(self, run_id: str) -> dict:
        rows = self._rows("SELECT * FROM runs WHERE id = ?", (run_id,))
        if not rows:
            raise RegistryError(f"no run {run_id!r} in {self.path}")
        return rows[0]

    def list_runs(self) -> list[dict]:
        return self._rows("SELECT * FROM runs ORDER BY created DESC")

    # phases ---------------------------------------------------------------------------------
    def _new_attempt(self, run_id: str, phase: str, status: str, started: float | None) -> int:
        with self._lock, self.conn:
            (last,) = self.conn.execute(
                "SELECT COALESCE(MAX(attempt), 0) FROM phase_runs WHERE run = ? AND phase = ?",
                (run_id, phase)).fetchone()
            self.conn.execute("INSERT INTO phase_runs (run, phase, attempt, status, started) "
                              "VALUES (?, ?, ?, ?, ?)", (run_id, phase, last + 1, status, started))
        return last + 1

    def start_phase(self, run_id: str, phase: str) -> int:
        """Open a new attempt of `phase` in state 'running' and return its attempt number."""
        return self._new_attempt(run_id, phase, "running", time.time())

    def finish_phase(self, run_id: str, phase: str, attempt: int, status: str,
                     error: str | None = None, summary: dict | None = None) -> None:
        """Close an attempt as done, not_adopted, failed or interrupted."""
        if status not in PHASE_STATES:
            raise ValueError(f"unknown phase status {status!r}")
        self._write("UPDATE phase_runs SET status = ?, ended = ?, error = ?, summary = ? "
                    "WHERE run = ? AND phase = ? AND attempt = ?",
                    (status, time.time(), error, json.dumps(summary or {}), run_id, phase, attempt))

    def mark_pending(self, run_id: str, phase: str) -> None:
        """Record that `phase` must run again (rollback) with a 'pending' attempt row."""
        self._new_attempt(run_id, phase, "pending", None)

    def interrupt_running(self, run_id: str) -> int:
        """Mark attempts left 'running' by a dead driver as 'interrupted'; returns how many."""
        cur = self._write("UPDATE phase_runs SET status = 'interrupted', ended = ? "
                          "WHERE run = ? AND status = 'running'", (time.time(), run_id))
        return cur.rowcount

    def phase_runs(self, run_id: str) -> list[dict]:
        return self._rows("SELECT * FROM phase_runs WHERE run = ? ORDER BY rowid",
                          (run_id,))

    def latest_phases(self, run_id: str) -> dict[str, dict]:
        """The newest attempt of each phase of a run, by phase name."""
        rows = self._rows("SELECT * FROM phase_runs WHERE run = ? ORDER BY rowid", (run_id,))
        return {r["phase"]: r for r in rows}

    # models ---------------------------------------------------------------------------------
    def register_model(self, model_id: str, run_id: str, phase: str, name: str, path: str,
                       sha256: str, nbytes: int, params: int, metadata: dict,
                       parents: Iterable[tuple[str, str]] = ()) -> None:
        """Insert or replace a model row and its lineage edges (parent id, method)."""
        with self._lock, self.conn:
            self.conn.execute("DELETE FROM lineage WHERE child = ?", (model_id,))
            self.conn.execute(
                "INSERT OR REPLACE INTO models (id, run, phase, name, path, sha256, bytes, params, "
                "metadata, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (model_id, run_id, phase, name, path, sha256, nbytes, params,
                 json.dumps(metadata, sort_keys=True), time.time()))
            self.conn.executemany("INSERT INTO lineage (child, parent, method) VALUES (?, ?, ?)",
                                  [(model_id, p, m) for p, m in parents])

    def get_model(self, model_id: str) -> dict:
        rows = self._rows("SELECT * FROM models WHERE id = ?", (model_id,))
        if not rows:
            raise RegistryError(f"no model {model_id!r} in {self.path}")
        return rows[0]

    def list_models(self, run_id: str | None = None, phase: str | None = None) -> list[dict]:
        sql, args = "SELECT * FROM models WHERE 1=1", []
        if run_id:
            sql, args = sql + " AND run = ?", args + [run_id]
        if phase:
            sql, args = sql + " AND phase = ?", args + [phase]
        return self._rows(sql + " ORDER BY created, id", args)

    def parents(self, model_id: str) -> list[dict]:
        return self._rows("SELECT parent, method FROM lineage WHERE child = ? ORDER BY parent",
                          (model_id,))

    def lineage_tree(self, model_id: str, depth: int = 32) -> dict:
        """The ancestry of a model as nested dicts {id, method, removed, parents: [...]};
        `removed` marks an ancestor whose run `forge gc` deleted (or an outside source)."""
        known = self._rows("SELECT 1 FROM models WHERE id = ?", (model_id,))
        node = {"id": model_id, "parents": [], "removed": not known}
        if depth > 0:
            for edge in self.parents(model_id):
                child = self.lineage_tree(edge["parent"], depth - 1)
                child["method"] = edge["method"]
                node["parents"].append(child)
        return node

    # the run's own files --------------------------------------------------------------------
    def record_run_file(self, run_id: str, name: str, sha256: str) -> None:
        """The digest of a run file (tokenizer, corpus), kept from the first time: the one
        the run's models were made with."""
        self._write("INSERT OR IGNORE INTO run_files (run, name, sha256) VALUES (?, ?, ?)",
                    (run_id, name, sha256))

    def run_files(self, run_id: str) -> dict[str, str]:
        rows = self._rows("SELECT name, sha256 FROM run_files WHERE run = ?", (run_id,))
        return {r["name"]: r["sha256"] for r in rows}

    # metrics and handoffs -------------------------------------------------------------------
    def log_metrics(self, run_id: str, phase: str, step: int, values: dict[str, float],
                    model: str = "", when: float | None = None) -> int:
        """Upsert one row per metric; a replayed step overwrites, so restarts never duplicate."""
        now = time.time() if when is None else when
        rows = [(run_id, phase, model, int(step), str(k), float(v), now) for k, v in values.items()]
        with self._lock, self.conn:
            self.conn.executemany("INSERT OR REPLACE INTO metrics (run, phase, model, step, name, "
                                  "value, time) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        return len(rows)

    def metrics(self, run_id: str, phase: str | None = None, name: str | None = None) -> list[dict]:
        sql, args = "SELECT * FROM metrics WHERE run = ?", [run_id]
        if phase:
            sql, args = sql + " AND phase = ?", args + [phase]
        if name:
            sql, args = sql + " AND name = ?", args + [name]
        return self._rows(sql + " ORDER BY phase, model, step, name", args)

    def record_handoff(self, run_id: str, from_phase: str, to_phase: str, contract: dict,
                       result: str) -> None:
        self._write("INSERT OR REPLACE INTO handoffs (run, from_phase, to_phase, contract, result, "
                    "time) VALUES (?, ?, ?, ?, ?, ?)",
                    (run_id, from_phase, to_phase, json.dumps(contract, sort_keys=True), result,
                     time.time()))

    def handoffs(self, run_id: str) -> list[dict]:
        return self._rows("SELECT * FROM handoffs WHERE run = ? ORDER BY time", (run_id,))

    def count(self, table: str, run_id: str) -> int:
        """Rows of `table` belonging to a run (for tests and `forge status`)."""
        if table not in ("phase_runs", "models", "metrics", "handoffs"):
            raise ValueError(f"unknown table {table!r}")
        return self._rows(f"SELECT COUNT(*) AS n FROM {table} WHERE run = ?", (run_id,))[0]["n"]

    # maintenance ----------------------------------------------------------------------------
    def delete_run(self, run_id: str) -> None:
        """Delete a run and its rows. Edges from models of other runs to its models stay: the
        lineage of a kept model survives, its removed ancestor shown as removed."""
        with self._lock, self.conn:
            self.conn.execute("DELETE FROM runs WHERE id = ?", (run_id,))

    def backup(self, dest: str | Path) -> Path:
        """A consistent copy of the whole database at `dest` (SQLite's online backup API, so
        writers may go on), written under a temporary name and renamed into place."""
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.tmp")
        tmp.unlink(missing_ok=True)
        target = sqlite3.connect(tmp)
        try:
            with self._lock:
                self.conn.backup(target)
        finally:
            target.close()
        tmp.replace(dest)
        return dest

    def compact(self) -> None:
        """Checkpoint the WAL into the main file and give freed pages back to the disk."""
        with self._lock:
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self.conn.execute("PRAGMA incremental_vacuum")
