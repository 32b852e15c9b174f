"""Write a finished Phase 4 (BitNet b1.58) attempt as docs/results/bitnet_phase.{json,md}.

    python -m forge.phases.bitnet_report RUN_ID --runs-dir runs [--out docs/results] [--note TEXT]
        [--name bitnet_phase]

Reads the phase's summary from the registry (what `run_bitnet` returned: evaluations of the fp
model, right after quantisation and after STE fine-tuning, sizes, gate, calibration) and adds
the machine. Exit 2 with one line when the run or its bitnet attempt does not exist.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from forge.registry import RegistryError, RegistryStore

NAME = "bitnet_phase"
STAGES = (("fp", "fp input model"), ("ternary_ptq", "ternary, right after quantisation"),
          ("ternary_ste", "ternary, after STE fine-tuning (the artifact)"))


def phase_record(runs_dir: Path, run_id: str) -> dict[str, Any]:
    """The latest bitnet attempt of `run_id`: status, summary and the run's config text.
    ValueError naming what is missing."""
    db = Path(runs_dir) / "registry.db"
    if not db.is_file():
        raise ValueError(f"{db}: no registry")
    store = RegistryStore(db, readonly=True)
    try:
        run = store.get_run(run_id)
        row = store.latest_phases(run_id).get("bitnet")
    except RegistryError as err:
        raise ValueError(str(err)) from None
    finally:
        store.close()
    if row is None or not row.get("summary"):
        raise ValueError(f"run {run_id}: no finished bitnet attempt")
    return {"run": run_id, "status": row["status"], "summary": json.loads(row["summary"]),
            "config": run.get("config", "")}


def _interval(m: dict[str, float]) -> str:
    if "tasks/exact_match" not in m:
        return "-"
    return (f"{m['tasks/exact_match']:.3f} [{m['tasks/exact_match_low']:.3f}, "
            f"{m['tasks/exact_match_high']:.3f}] (n={int(m['tasks/n'])})")


def markdown(record: dict[str, Any], machine: dict[str, Any]) -> str:
    """The report page: quality per stage, sizes, gate, training, calibration per layer."""
    d = record["summary"]["details"]
    lines = [f"# Phase 4 (BitNet b1.58) result: run `{record['run']}`", ""]
    if record.get("note"):
        lines += [record["note"], ""]
    lines += [
             f"Status **{record['status']}**; gate: {d['gate']['reason']}.", "",
             "| model | val bits/byte | val perplexity | task answer bits/byte | exact match [95% CI] |",
             "|---|---|---|---|---|"]
    for key, label in STAGES:
        m = d[key]
        lines.append(f"| {label} | {m['text/bits_per_byte']:.4f} | {m['text/perplexity']:.1f} | "
                     f"{m.get('tasks/answer_bits_per_byte', float('nan')):.4f} | {_interval(m)} |")
    s = d["size"]
    lines += ["", "| size | value |", "|---|---|",
              f"| artifact bytes on disk | {int(s['artifact_bytes']):,} |",
              f"| linear-layer bits per weight (all ternary layers) | {s['linear_bits_per_weight']:.4f} |",
              f"| worst single layer, bits per weight | {s['max_layer_bits_per_weight']:.4f} |",
              f"| whole artifact, bits per stored value | {s['model_bits_per_weight']:.3f} |",
              f"| ratio to fp32 (4 bytes x stored values) | {s['ratio_fp32']:.3f}x |",
              f"| ratio to fp16 | {s['ratio_fp16']:.3f}x |", "",
              f"STE fine-tuning: {d['steps']} steps, final loss {d['train']['final_loss']:.4f}, "
              f"{d['train']['tokens_per_s']:.0f} tokens/s; QK-clip clipped "
              f"{int(d['train']['qk_clip/heads_clipped'])} heads (max logit "
              f"{d['train']['qk_clip/max_logit']:.2f}). Reloaded artifact logits equal the "
              f"in-memory model's: {d['reload_logits_equal']}. Phase wall time {d['wall_s']:.1f} s.",
              "", "Calibration on validation text (fp model; see docs/quant.md for the columns):", "",
              "| layer | act absmax | token absmax | p99.9 | act SQNR dB | W rel err | zero trits | out rel err |",
              "|---|---|---|---|---|---|---|---|"]
    for name, c in d["calibration"].items():
        lines.append(f"| {name.removeprefix('model.net.')} | {c['act_absmax']:.2f} | "
                     f"{c['act_token_absmax']:.2f} | {c['act_p999']:.2f} | {c['act_sqnr_db']:.1f} | "
                     f"{c['weight_rel_error']:.3f} | {c['weight_zero_frac']:.3f} | "
                     f"{c['out_rel_error']:.3f} |")
    lines += ["", "Machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()), ""]
    return "\n".join(lines)


def write_report(record: dict[str, Any], out_dir: Path, machine: dict[str, Any],
                 name: str = NAME) -> Path:
    """docs/results/<name>.json (the record) and .md (the page); returns the .md path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = {**record, "machine": machine}
    (out_dir / f"{name}.json").write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
    page = out_dir / f"{name}.md"
    page.write_text(markdown(record, machine))
    return page


def main(argv: list[str] | None = None) -> int:
    from forge.bench.harness import RESULTS_DIR, machine

    p = argparse.ArgumentParser(prog="python -m forge.phases.bitnet_report", description=__doc__)
    p.add_argument("run_id")
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--out", default=str(RESULTS_DIR))
    p.add_argument("--note", default="", help="a paragraph under the title (what the input was)")
    p.add_argument("--name", default=NAME, help="file name without extension")
    args = p.parse_args(argv)
    try:
        record = phase_record(Path(args.runs_dir), args.run_id)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not args.name.startswith("bitnet"):
        print(f"error: --name {args.name!r}: must start with 'bitnet'", file=sys.stderr)
        return 2
    print(write_report({**record, "note": args.note}, Path(args.out), machine(), args.name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
