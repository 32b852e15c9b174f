"""Phase 2 merge library: pure PyTorch on state dicts, one file per method, one registry.

    from forge.merge import MergeParams, get_merge, merged_config
    sd = get_merge("slerp")([sd_a, sd_b], None, MergeParams(t=0.3))

Methods: linear, slerp, ties, dare_linear / dare_ties (`dare` = dare_linear), frankenmerge, dfs.
See docs/merge.md for formulas, sources and parameters.
"""
from __future__ import annotations

from forge.merge.common import MergeParams, StateDict
from forge.merge.dare import dare_linear_merge, dare_ties_merge, drop_and_rescale
from forge.merge.dfs import dfs, dfs_merge, fold_input_scales
from forge.merge.frankenmerge import frankenmerge, frankenmerge_merge, slices_to_path
from forge.merge.layers import layer_count, merged_config
from forge.merge.linear import linear_merge
from forge.merge.registry import MERGE_METHODS, MergeMethod, get_merge, merge
from forge.merge.slerp import COLINEAR_COS, lerp, slerp, slerp_merge
from forge.merge.ties import elect_and_merge, kept_count, ties_merge, trim

__all__ = ["COLINEAR_COS", "MERGE_METHODS", "MergeMethod", "MergeParams", "StateDict",
           "dare_linear_merge", "dare_ties_merge", "dfs", "dfs_merge", "drop_and_rescale",
           "elect_and_merge", "fold_input_scales", "frankenmerge", "frankenmerge_merge",
           "get_merge", "kept_count", "layer_count", "lerp", "linear_merge", "merge",
           "merged_config", "slerp", "slerp_merge", "slices_to_path", "ties_merge", "trim"]
