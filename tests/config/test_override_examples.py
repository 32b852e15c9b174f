"""Every `--set KEY=VALUE` example the project shows (README, docs, YAML comments, docstrings and
CLI help) is applied to the config it names and must validate: a documented override that fails
with "unknown key" is a broken promise."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import tests.fixture_phases  # noqa: F401  (tests/fixture.yaml's examples name the fixture phases)
from forge.config import DEFAULT_CONFIG, load

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ["README.md", "docs/*.md", "docs/phases/*.md", "config/*.yaml", "config/presets/*.yaml",
           "tests/*.yaml", "forge/**/*.py", "actors/**/*.py"]
# a value is a YAML list or a plain word ("[--set k=v]" is usage syntax: its "]" is not the value's)
SET = re.compile(r"--set[ =]['\"]?([A-Za-z_][\w.]*=(?:\[[^\]]*\]|[^\s'\"`)\]]+))")
CONFIG = re.compile(r"--config[ =](\S+\.yaml)")
PLACEHOLDER = ("a.b.c=", "KEY=")


def examples() -> list[tuple[str, str, Path]]:
    """(where, override, config file) for every example in the sources."""
    found = []
    for pattern in SOURCES:
        for path in sorted(ROOT.glob(pattern)):
            rel = path.relative_to(ROOT)
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                named = CONFIG.search(line)
                config = (ROOT / named.group(1) if named else
                          path if path.suffix == ".yaml" else DEFAULT_CONFIG)
                found += [(f"{rel}:{number}", item, config) for item in SET.findall(line)
                          if not item.startswith(PLACEHOLDER)]
    return found


EXAMPLES = examples()


def test_the_examples_are_found() -> None:
    where = {w.split(":")[0] for w, _, _ in EXAMPLES}
    assert {"README.md", "config/pipeline.yaml", "forge/submit.py"} <= where
    assert len(EXAMPLES) >= 15


@pytest.mark.parametrize("where, item, config", EXAMPLES, ids=[w for w, _, _ in EXAMPLES])
def test_documented_override_applies(where: str, item: str, config: Path) -> None:
    key, _, value = item.partition("=")
    cfg = load(config, [item])
    node = cfg
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else getattr(node, part)
    assert node is not None, f"{where}: {item} left {key} unset"


def test_scientific_notation_without_a_dot_is_a_number() -> None:
    # YAML 1.1 (PyYAML) reads `2e-3` as the string '2e-3'; a config user means the number
    assert load(DEFAULT_CONFIG, ["optim.cognate.lr=2e-3"]).optim.cognate.lr == 2e-3
    with pytest.raises(Exception, match="optim.cognate.lr: got 'fast'"):
        load(DEFAULT_CONFIG, ["optim.cognate.lr=fast"])
