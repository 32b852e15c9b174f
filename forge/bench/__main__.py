"""`python -m forge.bench NAME [--quick] [--repeats N] [--out DIR]`."""
from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.table import Table

from forge.bench import harness


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m forge.bench", description=__doc__)
    parser.add_argument("name", help=f"benchmark: {', '.join(harness.available()) or '(none yet)'}")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for tests and smoke runs")
    parser.add_argument("--repeats", type=int, default=None, help="repetitions (default per benchmark)")
    parser.add_argument("--out", default=None, help="output directory (default docs/results)")
    args = parser.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        print("forge.bench: --repeats must be >= 1", file=sys.stderr)
        return 2
    try:
        result = harness.run(args.name, quick=args.quick, repeats=args.repeats, out_dir=args.out)
    except ValueError as err:
        print(f"forge.bench: {err}", file=sys.stderr)
        return 2
    table = Table(title=f"forge.bench {args.name}")
    for col in ("metric", "unit", "median", "min", "max"):
        table.add_column(col)
    for metric, s in result["metrics"].items():
        table.add_row(metric, result["units"].get(metric, ""), f"{s['median']:.4g}",
                      f"{s['min']:.4g}", f"{s['max']:.4g}")
    console = Console()
    console.print(table)
    for k, v in result["facts"].items():
        console.print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
