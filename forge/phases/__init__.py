"""The built-in phases: each has a config module (light: imported whenever a config is loaded)
and a module of pure steps; `actors/phases/<name>.py` says how the steps run on Ray."""
from forge.phases import cognate_config  # noqa: F401  (registers phases.cognate)
