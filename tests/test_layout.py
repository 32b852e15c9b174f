"""Architecture rules that keep the library testable without Ray."""
import ast

from tests.conftest import ROOT


def imported_modules(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


def test_no_module_under_forge_imports_ray_except_submit():
    offenders = []
    for path in sorted((ROOT / "forge").rglob("*.py")):
        if path == ROOT / "forge" / "submit.py":
            continue
        for mod in imported_modules(path):
            if mod == "ray" or mod.startswith("ray.") or mod == "actors" or mod.startswith("actors."):
                offenders.append(f"{path.relative_to(ROOT)} imports {mod}")
    assert offenders == []


def test_no_pickle_of_models():
    for path in sorted((ROOT / "forge").rglob("*.py")):
        text = path.read_text()
        assert "import pickle" not in text, f"{path} imports pickle"
        assert "weights_only=False" not in text, f"{path} loads with weights_only=False"
