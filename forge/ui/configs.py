"""The config editor's logic: the YAML files to start from, validation, the submit command."""
from __future__ import annotations

import shlex
from pathlib import Path

import yaml

from forge.config import CONFIG_DIR, DEFAULT_CONFIG, ConfigError, PipelineConfig, load_dict
from forge.storage import is_uri, masked

EDITED_NAME = "pipeline-edited.yaml"  # the file name the edited YAML is submitted (or saved) as


def config_sources() -> dict[str, Path]:
    """The YAML a user can start from: config/pipeline.yaml, then every preset, by label."""
    sources = {"config/pipeline.yaml": DEFAULT_CONFIG}
    for path in sorted((CONFIG_DIR / "presets").glob("*.yaml")):
        sources[f"config/presets/{path.name}"] = path
    return sources


def validate_yaml(text: str) -> tuple[PipelineConfig | None, str]:
    """(config, '') when `text` is a valid pipeline config, else (None, the one-line error the
    CLI would print: the key path, the value and what is allowed)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        return None, f"config: not valid YAML{where}"
    try:
        return load_dict(data if data is not None else {}), ""
    except ConfigError as err:
        return None, str(err)


def job_runs_dir(runs_dir: str) -> str:
    """The runs location a submitted job must use: the dashboard's own (absolute, since a Ray
    job starts in its uploaded working directory, not here)."""
    return runs_dir if is_uri(runs_dir) else str(Path(runs_dir).resolve())


def job_entrypoint(runs_dir: str, display: bool = False) -> str:
    """What the Ray Job runs, inside a working directory holding only the edited YAML (with
    `display`, the runs URI's secret masked: for showing, not for running)."""
    where = job_runs_dir(runs_dir)
    return (f"python -m forge.submit --config {EDITED_NAME} "
            f"--runs-dir {shlex.quote(masked(where) if display else where)}")


def submit_commands(runs_dir: str, dashboard_url: str | None = None) -> list[str]:
    """The exact commands that run the edited YAML (saved as `pipeline-edited.yaml` in the
    current directory): directly, and as a Ray Job once a cluster is up. Secrets masked."""
    address = dashboard_url or "http://127.0.0.1:8265"
    entry = job_entrypoint(runs_dir, display=True)
    return [entry, f"ray job submit --address {address} --working-dir . -- {entry}"]
