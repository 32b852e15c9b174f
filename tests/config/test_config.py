"""Config: every shipped YAML validates; overrides apply; bad values name their key."""
from pathlib import Path

import pytest

from forge.config import ConfigError, PipelineConfig, apply_override, dump, from_yaml_text, load, load_dict
from tests.conftest import ROOT

SHIPPED = sorted((ROOT / "config").rglob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_yaml_loads(path):
    cfg = load(path)
    assert isinstance(cfg, PipelineConfig)
    for name in cfg.pipeline.phases:
        cfg.phase(name)  # every planned phase has a config


def test_first_line_of_every_shipped_yaml_shows_its_command():
    for path in SHIPPED:
        assert path.read_text().startswith("#"), f"{path} should begin with a usage comment"


def test_overrides_apply_with_yaml_types():
    cfg = load(ROOT / "config" / "pipeline.yaml", ["run.seed=7", "ray.num_cpus=2", "run.name=x y"])
    assert (cfg.run.seed, cfg.ray.num_cpus, cfg.run.name) == (7, 2, "x y")


def test_dump_round_trips():
    cfg = load(ROOT / "config" / "pipeline.yaml", ["run.seed=3"])
    assert from_yaml_text(dump(cfg)) == cfg


def test_override_into_non_mapping_is_rejected():
    with pytest.raises(ConfigError, match="run.seed is not a mapping"):
        apply_override({"run": {"seed": 1}}, "run.seed.x=2")


@pytest.mark.parametrize("data, key", [
    ({"run": {"seed": "one"}}, "run.seed"),
    ({"run": {"seed": -4}}, "run.seed"),
    ({"run": {"colour": "red"}}, "run.colour"),
    ({"ray": {"object_store_mb": 10}}, "ray.object_store_mb"),
    ({"wandb": {"mode": "loud"}}, "wandb.mode"),
    ({"pipeline": {"phases": "cognate"}}, "pipeline.phases"),
    ({"registry": {"keep_runs": 0}}, "registry.keep_runs"),
    ({"run": {"device": True}}, "run.device"),
    ({"run": ["a"]}, "run"),
])
def test_bad_values_name_their_key(data, key):
    with pytest.raises(ConfigError) as err:
        load_dict(data)
    assert str(err.value).startswith(key + ":")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("override", [
    "optim.cognate.lr=.inf", "optim.cognate.lr=.nan", "optim.cognate.grokfast_lambda=.inf",
    "optim.cognate.qk_clip_tau=.inf", "phases.cognate.trainer_cpus=.inf",
    "phases.quiet_star.gate.margin=.nan", "phases.quiet_star.gate.margin=-.inf",
    "phases.cognate.specialisations=[{name: a, task_weights: {chain_sum: .inf}}]",
])
def test_nan_and_inf_are_refused_naming_the_key(override):
    key = override.split("=")[0].split(".specialisations")[0]
    with pytest.raises(ConfigError) as err:
        load(ROOT / "config" / "pipeline.yaml", [override])
    msg = str(err.value)
    assert msg.startswith(key) and msg.endswith("allowed: a finite number") and "\n" not in msg


def test_missing_file_and_bad_yaml(tmp_path: Path):
    with pytest.raises(ConfigError, match="file not found"):
        load(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("run: [\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load(bad)


def test_loading_a_config_stays_light():
    """Bad input is rejected in a fraction of a second: reading a config (every phase's section
    included) must not import torch, transformers or ray."""
    import subprocess
    import sys

    code = ("import sys\nfrom forge.config import DEFAULT_CONFIG, load\nload(DEFAULT_CONFIG)\n"
            "import forge.submit\n"
            "print(sorted(m for m in ('torch', 'transformers', 'ray') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
