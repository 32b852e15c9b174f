"""The built-in phases: each module holds one phase's pure steps and registers it.

Phases register themselves in `forge.pipeline.registry` when imported here.
"""
