"""Benchmarks: `python -m forge.bench NAME [--quick]`.

A benchmark is a module `forge.bench.<name>` with

    def measure(quick: bool) -> dict[str, float]   # one repetition: metric -> value
    UNITS: dict[str, str]                           # optional: metric -> unit
    REPEATS: int                                    # optional: repetitions (default 3)
    def setup(quick: bool) -> dict                  # optional: facts recorded once (sizes, config)

The harness repeats `measure`, prints median/min/max per metric, and writes
`docs/results/<name>.json` and `.md` with the machine it ran on.
"""
