"""The built-in phases, in pipeline order. Each has a config module `<name>_config.py` (light:
imported whenever a config is loaded; it registers `phases.<name>`) and one module `<name>.py`
holding the whole phase: its class (registered on import) and its pure steps. A phase with a
parallel part takes an executor for it; `actors/phases/<name>.py` supplies the Ray one.

Adding a phase: write its two modules and add its name to `BUILT_IN`."""
import importlib

BUILT_IN = ("cognate", "evomerge", "quiet_star", "bitnet")

for _name in BUILT_IN:
    importlib.import_module(f"{__name__}.{_name}_config")


def load_phase_module(name: str) -> None:
    """Import a built-in phase's module (which registers its class); unknown names are ignored."""
    if name in BUILT_IN:
        importlib.import_module(f"{__name__}.{name}")
