"""The built-in phases: each has a config module `<name>_config.py` (light: imported whenever a
config is loaded, it registers `phases.<name>`) and a module of pure steps; `actors/phases/<name>.py`
says how the steps run on Ray. Config modules are found by name, so adding a phase edits no list."""
import importlib
import pkgutil

for _info in pkgutil.iter_modules(__path__):
    if _info.name.endswith("_config"):
        importlib.import_module(f"{__name__}.{_info.name}")
