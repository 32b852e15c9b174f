"""Agent Forge: build a small language model from scratch through an 8-phase pipeline."""

__version__ = "0.1.0"


def __getattr__(name: str):
    """`forge.load_model(path)`: the one loader of every artifact kind (`forge.quant.load`),
    imported on first use so that `import forge` stays light (no torch for config work)."""
    if name == "load_model":
        from forge.quant.load import load_model
        return load_model
    raise AttributeError(f"module 'forge' has no attribute {name!r}")
