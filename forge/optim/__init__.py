"""MuGrokfast: Muon + AdamW routing, Grokfast EMA filter and QK-clip (DESIGN.md section 5, 9)."""
from __future__ import annotations

from forge.optim.grokfast import GrokfastEMA, grokfast_ema_
from forge.optim.mugrokfast import MuGrokfast, build_optimizer
from forge.optim.qk_clip import clip_factors, max_logits, qk_clip_
from forge.optim.routing import ParamRouting, route_parameters

__all__ = ["MuGrokfast", "build_optimizer", "GrokfastEMA", "grokfast_ema_", "qk_clip_",
           "clip_factors", "max_logits", "route_parameters", "ParamRouting"]
