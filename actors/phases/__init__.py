"""How each phase's pure steps run on Ray; importing this registers every runnable phase
(each module of this package registers its phase class with `forge.pipeline.register_phase`)."""
import importlib
import pkgutil

for _info in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_info.name}")
