"""The four built-in phases in one process with Ray unimportable: each phase class with its local
executor, models handed on through the handoff contracts. Prints one JSON line per phase.

    python tests/phases/run_without_ray.py CONFIG RUNS_DIR [KEY=VALUE ...]
"""
import json
import sys
from pathlib import Path

sys.modules["ray"] = None  # any `import ray` below raises ImportError

from forge.config import load  # noqa: E402
from forge.phases import BUILT_IN  # noqa: E402
from forge.pipeline import PhaseContext, get_phase  # noqa: E402
from forge.pipeline.phase import output_ref  # noqa: E402


class Rows:
    """A recorder that keeps metric rows in memory."""

    def __init__(self):
        self.rows = []

    def log_metrics(self, run_id, phase, step, values, model=""):
        self.rows += [(phase, model, step, k, v) for k, v in values.items()]

    def progress(self, phase, done, total, note=""):
        pass


def main(config: str, runs_dir: str, *sets: str) -> None:
    cfg = load(config, [f"run.runs_dir={runs_dir}", *sets])
    run_dir = Path(runs_dir) / "local"
    inputs, recorder = [], Rows()
    for name in BUILT_IN:
        phase = get_phase(name)()
        ctx = PhaseContext("local", name, 1, run_dir, run_dir / name, cfg, recorder)
        ctx.out_dir.mkdir(parents=True)
        phase.validate_input(inputs, ctx)
        result = phase.run(inputs, ctx)
        phase.validate_output(result, ctx)
        if result.adopted:
            inputs = [output_ref(ctx, o) for o in result.outputs if o.handed_on]
        print(json.dumps({"phase": name, "adopted": result.adopted, "key": result.key_metric,
                          "outputs": [r.id for r in inputs], "ray": "ray" in sys.modules
                          and sys.modules["ray"] is not None,
                          "rows": sum(r[0] == name for r in recorder.rows),
                          "summary": {k: result.summary.get(k) for k in (
                              "trainer_nodes", "generations_scored", "timing")}}), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
