"""Quiet-STaR (Zelikman et al., arXiv 2403.09629): thoughts at every position, a mixing head,
REINFORCE on the thoughts, and generation that thinks without showing it (Phase 3).

    from forge.reasoning import add_thought_head, quiet_star_loss, think_generate
"""
from __future__ import annotations

from forge.reasoning.generate import think_generate
from forge.reasoning.losses import LossSettings, quiet_star_loss
from forge.reasoning.mixing import add_thought_head, mixed_predictions, thought_config
from forge.reasoning.thoughts import (ThoughtPass, random_thoughts, run_thoughts,
                                      sample_thoughts)

__all__ = ["LossSettings", "ThoughtPass", "add_thought_head", "mixed_predictions",
           "quiet_star_loss", "random_thoughts", "run_thoughts", "sample_thoughts",
           "think_generate", "thought_config"]
