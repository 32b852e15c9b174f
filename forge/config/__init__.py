"""Pipeline config: YAML -> overrides -> frozen, validated dataclasses.

    cfg = load("config/pipeline.yaml", ["phases.cognate.train.steps=50"])

Every error is a `ConfigError` whose one-line message names the key path, the value and what is
allowed; the loader does no other work, so a bad config never leaves anything behind.
"""
from __future__ import annotations

from dataclasses import dataclass, field
import sys
from pathlib import Path
from typing import Any, Iterable

import yaml

from forge.config.data import DataConfig
from forge.config.model import ModelConfig
from forge.config.optim import OptimConfig
from forge.config.phases import PHASE_CONFIGS, register_phase_config
from forge.config.schema import ConfigError, build, option, to_dict
from forge.config.sections import (GatedPhaseConfig, GateConfig, PhaseConfig, PlanConfig, RayConfig, RegistryConfig,
                                   Resources, RunConfig, WandbConfig)

ROOT = Path(__file__).resolve().parents[2]
# The source tree's config/ (editable installs, CI), else the copy a wheel installs under
# <prefix>/share/agent-forge/config.
_INSTALLED = Path(sys.prefix) / "share" / "agent-forge" / "config"
CONFIG_DIR = ROOT / "config" if (ROOT / "config").is_dir() else _INSTALLED
DEFAULT_CONFIG = CONFIG_DIR / "pipeline.yaml"

__all__ = ["ConfigError", "PipelineConfig", "load", "load_dict", "DEFAULT_CONFIG", "to_dict",
           "PhaseConfig", "GatedPhaseConfig", "Resources", "GateConfig", "register_phase_config", "option"]


@dataclass(frozen=True)
class PipelineConfig:
    """The whole run: what to build, with which data, on which resources."""

    run: RunConfig = field(default_factory=RunConfig)
    pipeline: PlanConfig = field(default_factory=PlanConfig)
    ray: RayConfig = field(default_factory=RayConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    wandb: WandbConfig = field(default_factory=WandbConfig)
    registry: RegistryConfig = field(default_factory=RegistryConfig)
    phases: dict = field(default_factory=dict)  # phase name -> its registered PhaseConfig subclass

    def phase(self, name: str) -> PhaseConfig:
        """The config of phase `name` (its defaults when the YAML does not mention it)."""
        return self.phases.get(name) or PHASE_CONFIGS.get(name, PhaseConfig)()


def _builtin_phases() -> None:
    import forge.phases  # noqa: F401  (registers the built-in phases' config classes)


def apply_override(data: dict, item: str) -> None:
    """Apply one `a.b.c=value` override (value parsed as YAML) to nested `data` in place."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. phases.cognate.train.steps=50")
    key, raw = item.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"--set {item!r}: empty part in key {key!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as err:
        raise ConfigError(f"--set {key}: value {raw!r} is not valid YAML ({err.__class__.__name__})")
    node = data
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"--set {key}: {'.'.join(parts[:i + 1])} is not a mapping")
        node = child
    node[parts[-1]] = value


def load_dict(data: dict) -> PipelineConfig:
    """Validate plain config data (as read from YAML) into a `PipelineConfig`."""
    _builtin_phases()
    if not isinstance(data, dict):
        raise ConfigError(f"config: the top level must be a mapping, got {type(data).__name__}")
    data = dict(data)
    raw_phases = data.pop("phases", None) or {}
    if not isinstance(raw_phases, dict):
        raise ConfigError(f"phases: got {raw_phases!r}; allowed: a mapping of phase name -> settings")
    phases = {}
    for name, section in raw_phases.items():
        if name not in PHASE_CONFIGS:
            raise ConfigError(f"phases.{name}: unknown phase; available: {_available()}")
        if section is not None and not isinstance(section, dict):
            raise ConfigError(f"phases.{name}: got {section!r}; allowed: a mapping")
        phases[name] = build(PHASE_CONFIGS[name], section or {}, f"phases.{name}")
    cfg = build(PipelineConfig, data)
    for i, name in enumerate(cfg.pipeline.phases):
        if name not in PHASE_CONFIGS:
            raise ConfigError(f"pipeline.phases[{i}]: unknown phase {name!r}; available: {_available()}")
    return PipelineConfig(**{**cfg.__dict__, "phases": phases})


def _available() -> str:
    return ", ".join(sorted(PHASE_CONFIGS)) or "(none registered)"


def read_yaml(path: str | Path) -> dict:
    """Read a YAML config file, turning every failure into a one-line `ConfigError`."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config: file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise ConfigError(f"config: {path} is not a text file (byte {err.start} is not UTF-8)")
    except OSError as err:
        raise ConfigError(f"config: cannot read {path}: {err.strerror or err}")
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"config: {path} is not valid YAML{where}")
    return data if data is not None else {}


def load(path: str | Path | None = None, overrides: Iterable[str] = ()) -> PipelineConfig:
    """Load a YAML file (default `config/pipeline.yaml`), apply `--set` overrides, validate."""
    data = read_yaml(path or DEFAULT_CONFIG)
    if not isinstance(data, dict):
        raise ConfigError(f"config: the top level of {path} must be a mapping")
    for item in overrides:
        apply_override(data, item)
    return load_dict(data)


def dump(cfg: PipelineConfig) -> str:
    """The resolved config as YAML text (saved in the run directory and the registry)."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def from_yaml_text(text: str) -> PipelineConfig:
    """Rebuild a config saved by `dump` (used by resume)."""
    return load_dict(yaml.safe_load(text) or {})


