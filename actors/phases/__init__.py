"""How each phase's pure steps run on Ray; importing this registers the runnable phases."""
from actors.phases import cognate  # noqa: F401
