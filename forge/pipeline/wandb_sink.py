"""W&B for one phase: offline by default, never prompts, files under the run directory."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from forge.config.sections import WandbConfig


def open_wandb(cfg: WandbConfig, run_id: str, phase: str, run_dir: Path,
               config: dict | None = None) -> Any | None:
    """One W&B run per phase, grouped by the pipeline run id; None when W&B is disabled."""
    if cfg.mode == "disabled":
        return None
    import wandb

    os.environ.setdefault("WANDB_SILENT", "true")
    run_dir.mkdir(parents=True, exist_ok=True)
    return wandb.init(project=cfg.project, group=run_id, name=f"{run_id}-{phase}", job_type=phase,
                      dir=str(run_dir), mode=cfg.mode, config=config or {},
                      settings=wandb.Settings(console="off", silent=True, x_disable_stats=True),
                      reinit="create_new")
