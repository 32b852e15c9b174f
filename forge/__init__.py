"""Agent Forge: build a small language model from scratch through an 8-phase pipeline."""

__version__ = "0.1.0"
