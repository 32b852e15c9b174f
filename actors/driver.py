"""The driver: runs a plan phase by phase, each inside a PhaseActor, recording everything.

Resume is the same walk: a phase whose last attempt finished, consumed the same inputs and whose
artifacts still verify is skipped; anything else runs again in a new attempt. Outputs are written
to a staging directory and moved into place only after the phase passes its checks, so a crash
never leaves a half-written artifact where a finished one was.

Everything goes through the run storage (`forge.storage`): models travel as storage paths, each
PhaseActor pulls them onto its own node, and the driver reads only what it pulled itself.
"""
from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import ray

from actors.errors import one_line
from actors.metrics import record_progress
from actors.phase import PhaseActor, PhaseError
from actors.phases import build_phase
from actors.registry import RegistryClient
from actors.resources import actor_options
from forge.config import PipelineConfig
from forge.console import PhaseReport, RunReporter
from forge.data.text import CORPUS_FILE
from forge.data.tokenizer import TOKENIZER_FILE
from forge.phases.common import prepare_data, run_corpus
from forge.pipeline.artifacts import (ArtifactError, ModelRef, read_manifest, sha256_file,
                                      verify_artifact)
from forge.pipeline.inputs import INPUTS_DIR, InputModelError, input_ref, staged_inputs
from forge.pipeline.phase import PhaseResult, model_id
from forge.pipeline.plan import refs_from_json, refs_to_json, skip_decision
from forge.pipeline.progress import write_progress
from forge.pipeline.registry import get_phase
from forge.storage import RunStorage, StorageError


RUN_FILES = (CORPUS_FILE, TOKENIZER_FILE)  # made once per run, shared by every phase


class PhaseFailed(RuntimeError):
    """A phase failed; the message names it and its error."""

    def __init__(self, phase: str, message: str, reports: list[PhaseReport]):
        super().__init__(f"phase {phase} failed: {message}")
        self.phase, self.reports = phase, reports


@dataclass
class Driver:
    """Runs `plan` of run `run_id`; `registry` is the RegistryActor handle."""

    config: PipelineConfig
    run_id: str
    storage: RunStorage
    plan: list[str]
    registry: object
    reporter: RunReporter
    poll_s: float = 0.5
    progress_every_s: float = 2.0  # progress.json at most this often (a URI storage: one PUT each)
    _shown: dict = field(default_factory=dict, repr=False)  # phase -> (done, when) last written

    @property
    def run_dir(self) -> Path:
        """This run on the driver's node (the directory itself, or the driver's mirror of it)."""
        return self.storage.local(self.run_id)

    @property
    def runs_root(self) -> str:
        return str(self.storage.local_root)

    def run(self) -> list[PhaseReport]:
        store = RegistryClient(self.registry)
        store.interrupt_running(self.run_id)
        self._drop_dead_staging(store)
        self._check_run_files(store)
        latest = store.latest_phases(self.run_id)
        current = self._register_inputs(store)
        reports: list[PhaseReport] = []
        for name in self.plan:
            skip, reason = skip_decision(latest.get(name), current, self._verify)
            if skip:
                summary = json.loads(latest[name]["summary"])
                current = refs_from_json(summary["outputs"], self.runs_root)
                self.reporter.phase_skipped(name, reason)
                reports.append(PhaseReport(name, "skipped", key_metric=_key(summary),
                                           size_bytes=summary.get("size_bytes", 0), note=reason))
                continue
            try:
                why = f"re-run, {reason}" if name in latest else ""
                report, current = self._run_phase(store, name, current, why)
            except PhaseFailed as err:
                err.reports = reports + err.reports
                self._try_record(store.set_run_status, self.run_id, "failed")
                self._snapshot()
                raise
            reports.append(report)
            self._record_run_files(store)
            self._snapshot()
        store.set_run_status(self.run_id, "done")
        self._snapshot()
        return reports

    @staticmethod
    def _try_record(write, *args, **kwargs) -> bool:
        """A registry write that must not hide the error being reported; False if it failed."""
        try:
            write(*args, **kwargs)
            return True
        except (ray.exceptions.RayError, TimeoutError, OSError):
            return False

    def _record_run_files(self, store) -> None:
        """After each phase: the digest of every run file made so far (first one kept)."""
        for name in RUN_FILES:
            path = self.storage.pull(f"{self.run_id}/{name}")
            if path.is_file():
                store.record_run_file(self.run_id, name, sha256_file(path))

    def _check_run_files(self, store) -> None:
        """Every recorded run file must match its digest. A missing or damaged one is rebuilt
        from the run's config and must come out identical: the run's models were made with
        the original (a different vocabulary would silently change them)."""
        for name, expected in sorted(store.run_files(self.run_id).items()):
            rel = f"{self.run_id}/{name}"
            path = self.storage.pull(rel)
            if path.is_file() and sha256_file(path) == expected:
                continue
            why = "damaged (sha256 differs from the registry's)" if path.is_file() else "missing"
            self.storage.remove(rel)
            remake = run_corpus if name == CORPUS_FILE else prepare_data  # the tokenizer's step
            remake(self.config, self.run_dir, self.storage)
            if sha256_file(self.storage.pull(rel)) != expected:
                self.storage.remove(rel)  # never leave a file the models do not match
                store.set_run_status(self.run_id, "failed")
                raise InputModelError(f"{rel}: {why}; rebuilt from the run's config it differs "
                                      "from the original the run's models use: restore it from a "
                                      "copy, or start a new run")
            self.reporter.note(f"{name}: {why}; rebuilt from the run's config, identical")

    def _drop_dead_staging(self, store) -> None:
        """Remove the staging directories of attempts a killed driver left behind (interrupted);
        a not-adopted attempt keeps its outputs there for inspection."""
        for row in store.phase_runs(self.run_id):
            if row["status"] == "interrupted":
                self.storage.remove(f"{self.run_id}/.{row['phase']}.attempt-{row['attempt']}")

    def _snapshot(self) -> None:
        """Copy the registry into a URI run storage (forge.registry.snapshot). Best effort: a
        failed copy is reported and the run goes on (the registry itself is intact)."""
        if not self.storage.remote:
            return
        try:
            ray.get(self.registry.snapshot.remote(self.storage), timeout=300)
        except (ray.exceptions.RayError, TimeoutError) as err:
            print(f"warning: registry snapshot to {self.storage.display} failed: {one_line(err)}",
                  file=sys.stderr)

    def _register_inputs(self, store) -> list[ModelRef]:
        """The staged `pipeline.inputs`, registered (with an edge to their source) and handed to
        the first phase."""
        refs = []
        self.storage.pull(f"{self.run_id}/{INPUTS_DIR}")
        for name, copy, source in staged_inputs(self.run_dir):
            manifest = read_manifest(copy)
            ref = input_ref(self.run_id, name, copy, manifest)
            parents = [(source.registered_id, "input")] if source.registered_id else []
            store.register_model(ref.id, self.run_id, INPUTS_DIR, name,
                                 self.storage.rel(copy), ref.digest,
                                 manifest["bytes"], ref.params,
                                 {**ref.metadata, "source": source.spec}, parents)
            refs.append(ref)
        return refs

    def _verify(self, out: dict) -> str | None:
        try:
            verify_artifact(self.storage.pull(out["path"]), out["digest"])
        except ArtifactError as err:
            return f"artifact check failed: {err}"
        return None

    def _run_phase(self, store, name: str, inputs: list[ModelRef], why: str = ""):
        phase = build_phase(name)
        attempt = store.start_phase(self.run_id, name)
        self.reporter.phase_started(name, attempt, why)
        staging = f"{self.run_id}/.{name}.attempt-{attempt}"
        self.storage.remove(staging)
        started = time.time()
        try:
            result = self._call_actor(phase, name, attempt, staging, inputs)
        except (PhaseError, ray.exceptions.RayError, TimeoutError) as err:
            message = err.message if isinstance(err, PhaseError) else one_line(err)
            raise self._failed(store, name, attempt, staging, started, message) from err
        gate = getattr(self.config.phase(name), "gate", None)  # only a GatedPhaseConfig has one
        if not result.adopted and gate is not None and gate.on_fail == "fail":
            message = f"gate failed: {result.reason or 'output not adopted'}"
            raise self._failed(store, name, attempt, staging, started, message, result.key_metric)
        outputs = self._commit(store, name, result, staging, inputs) if result.adopted else inputs
        status = "done" if result.adopted else "not_adopted"
        size = sum(read_manifest(o.path)["bytes"] for o in outputs) if result.adopted else 0  # handed on
        summary = {"inputs": refs_to_json(inputs, self.runs_root),
                   "outputs": refs_to_json(outputs, self.runs_root),
                   "adopted": result.adopted, "reason": result.reason, "size_bytes": size,
                   "key_metric": list(result.key_metric) if result.key_metric else None,
                   "details": result.summary}
        store.finish_phase(self.run_id, name, attempt, status, summary=summary)
        report = PhaseReport(name, status, time.time() - started, result.key_metric, size, attempt,
                             result.reason)
        self.reporter.phase_finished(report)
        return report, outputs

    def _failed(self, store, name: str, attempt: int, staging: str, started: float,
                message: str, key_metric=None) -> PhaseFailed:
        """Record a failed attempt, drop its staged outputs, report it; the error to raise.
        When the registry cannot record it (its disk is full), the error says so and the
        attempt stays 'running', which the next resume marks interrupted."""
        if not self._try_record(store.finish_phase, self.run_id, name, attempt, "failed",
                                error=message):
            message += " (the registry could not record this failure)"
        try:
            self.storage.remove(staging)
        except (OSError, RuntimeError):
            pass  # the next resume removes it
        report = PhaseReport(name, "failed", time.time() - started, key_metric, attempt=attempt,
                             note=message)
        self.reporter.phase_finished(report)
        return PhaseFailed(name, message, [report])

    def _call_actor(self, phase, name: str, attempt: int, staging: str,
                    inputs: list[ModelRef]) -> PhaseResult:
        settings = self.config.phase(name)
        actor = PhaseActor.options(**actor_options(
            settings.resources, self.config.ray.placement, name=f"{name}/{self.run_id}",
            max_restarts=settings.max_restarts, max_task_retries=settings.max_restarts,
        )).remote(max(1, int(settings.resources.num_cpus)))
        spec = {"run_id": self.run_id, "phase": name, "attempt": attempt,
                "storage": self.storage, "out_rel": staging, "config": self.config}
        portable = [dataclasses.replace(r, path=self.storage.rel(r.path)) for r in inputs]
        ref = actor.run.remote(phase, portable, spec, self.registry)
        deadline = time.monotonic() + self.config.ray.phase_timeout_s
        try:
            while not ray.wait([ref], timeout=self.poll_s)[0]:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name} ran past ray.phase_timeout_s")
                self._show_progress(actor, name)
            return ray.get(ref)
        except ray.exceptions.RayTaskError as err:
            cause = err.as_instanceof_cause()
            raise cause if isinstance(cause, PhaseError) else err
        finally:
            ray.kill(actor)

    def _show_progress(self, actor, name: str) -> None:
        try:
            p = ray.get(actor.progress.remote(), timeout=5)
        except (ray.exceptions.RayError, TimeoutError):
            return  # the actor is restarting or busy; progress resumes on the next poll
        if p["total"]:
            self.reporter.progress(name, p["done"], p["total"], p["note"])
            if self._progress_due(name, p["done"], p["total"]):  # readers without Ray: forge ui
                try:
                    write_progress(self.storage, self.run_id, name, p["done"], p["total"], p["note"])
                except (StorageError, OSError):
                    pass  # a progress file is not worth a failed run; the next poll tries again
                record_progress(self.run_id, name, p["done"], p["total"])

    def _progress_due(self, name: str, done: int, total: int) -> bool:
        """Whether to write this progress: it changed, and it is the end or time for a write."""
        last_done, last_time = self._shown.get(name, (None, -float("inf")))
        now = time.monotonic()
        if done == last_done or (done < total and now - last_time < self.progress_every_s):
            return False
        self._shown[name] = (done, now)
        return True

    def _commit(self, store, name: str, result: PhaseResult, staging: str,
                inputs: list[ModelRef]) -> list[ModelRef]:
        """Move the staged outputs into runs/<run>/<phase>/ and register them with lineage."""
        self.storage.move(staging, f"{self.run_id}/{name}")
        final = self.storage.pull(f"{self.run_id}/{name}")
        refs = []
        prev = self.plan[self.plan.index(name) - 1] if self.plan.index(name) > 0 else "(start)"
        for out in result.outputs:
            path = final / out.name
            manifest = read_manifest(path)
            mid = model_id(self.run_id, name, out.name)
            parents = out.parents or [(i.id, name) for i in inputs]
            store.register_model(mid, self.run_id, name, out.name,
                                 self.storage.rel(path), manifest["digest"],
                                 manifest["bytes"], manifest["params"],
                                 {**manifest.get("metadata", {}), "metrics": manifest["metrics"]},
                                 parents)
            if out.handed_on:
                refs.append(ModelRef(mid, str(path), manifest["digest"], manifest["params"],
                                     manifest.get("metadata", {})))
        contract = get_phase(name).output_contract.as_dict()
        store.record_handoff(self.run_id, prev, name, contract, "ok")
        return refs


def _key(summary: dict):
    k = summary.get("key_metric")
    return tuple(k) if k else None
