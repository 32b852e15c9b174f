"""Calibration: per-layer statistics of what BitNet b1.58 quantisation (arXiv 2402.17764) does to
each linear layer of a full-precision model, measured on held-out text.

The 8-bit activation quantiser is dynamic (absmax per token, computed at run time), so nothing
is fitted here and no statistic changes the quantised model. What calibration gives is the
measured cost per layer, to choose the `keep` list and to explain a failing gate:

    act_absmax        max |x| over every input token of the layer
    act_token_absmax  mean over tokens of the per-token max |x| (the absmax scale * 127)
    act_p999          99.9th percentile of |x| (mean over batches); absmax / p999 >> 1 means
                      outliers set the per-token scale and crush the other channels
    act_sqnr_db       10 log10(sum x^2 / sum (x - Q_b(x))^2): signal to quantisation noise of
                      the activation quantiser alone
    weight_rel_error  ||W - W_q|| / ||W||, W_q = gamma RoundClip(W / gamma, -1, 1)
    weight_zero_frac  share of zero trits
    out_rel_error     ||x W^T - Q_b(x) W_q^T|| / ||x W^T||: the layer's output error with both
                      weights and activations quantised (inputs from the fp model)
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import torch
from torch import nn

from forge.quant.convert import DEFAULT_KEEP, head_rows, is_kept
from forge.quant.quantize import quantize_activations, quantize_weights

MAX_QUANTILE_INPUTS = 1 << 20  # torch.quantile refuses very large inputs; sample above this


@dataclass
class LayerStats:
    """Statistics of one linear layer (module docstring); `calls` counts hooked forwards."""

    act_absmax: float
    act_token_absmax: float
    act_p999: float
    act_sqnr_db: float
    weight_rel_error: float
    weight_zero_frac: float
    out_rel_error: float
    calls: int

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


class _Accumulator:
    """Running sums of one layer's statistics over every hooked call."""

    def __init__(self, linear: nn.Linear, act_bits: int, per_channel: bool,
                 group_rows: int | None) -> None:
        trits, gamma = quantize_weights(linear.weight, per_channel, group_rows=group_rows)
        self.w = linear.weight.detach().float()  # (out, in)
        self.w_q = trits.float() * gamma  # (out, in)
        self.act_bits = act_bits
        self.absmax = self.token_absmax = self.p999 = 0.0
        self.signal = self.noise = self.out_signal = self.out_noise = 0.0
        self.tokens = self.calls = 0

    def __call__(self, module: nn.Module, args: tuple) -> None:
        x = args[0].detach().float().reshape(-1, args[0].shape[-1])  # (N, in)
        codes, scale = quantize_activations(x, self.act_bits)
        x_q = codes * scale  # (N, in)
        peak = x.abs().amax(dim=-1)  # (N,)
        flat = x.abs().reshape(-1)
        if flat.numel() > MAX_QUANTILE_INPUTS:
            flat = flat[torch.randperm(flat.numel(), generator=torch.Generator().manual_seed(0))
                        [:MAX_QUANTILE_INPUTS]]
        self.absmax = max(self.absmax, float(peak.max()))
        self.token_absmax += float(peak.sum())
        self.p999 += float(torch.quantile(flat, 0.999))
        self.signal += float((x ** 2).sum())
        self.noise += float(((x - x_q) ** 2).sum())
        y = x @ self.w.T  # (N, out)
        self.out_signal += float((y ** 2).sum())
        self.out_noise += float(((y - x_q @ self.w_q.T) ** 2).sum())
        self.tokens += x.shape[0]
        self.calls += 1

    def stats(self) -> LayerStats:
        calls, tokens = max(self.calls, 1), max(self.tokens, 1)
        rel = float(torch.linalg.norm(self.w - self.w_q) / torch.linalg.norm(self.w).clamp_min(1e-12))
        zero = float((self.w_q == 0).float().mean())
        return LayerStats(self.absmax, self.token_absmax / tokens, self.p999 / calls,
                          _db(self.signal, self.noise), rel, zero,
                          math.sqrt(self.out_noise / max(self.out_signal, 1e-30)), self.calls)


def _db(signal: float, noise: float) -> float:
    return float("inf") if noise == 0 else 10 * math.log10(max(signal, 1e-30) / noise)


@torch.no_grad()
def calibrate(model: nn.Module, batches: Iterable[torch.Tensor], keep: Iterable[str] = DEFAULT_KEEP,
              act_bits: int = 8, per_channel: bool = False,
              head_scales: bool = False) -> dict[str, LayerStats]:
    """Run `model` (full precision, eval mode) on `batches` of token ids (B, T) and measure, for
    every `nn.Linear` that `convert_to_ternary(model, keep)` would convert, the statistics of
    the module docstring (BitNet b1.58, arXiv 2402.17764: absmean ternary weights, absmax
    `act_bits` activations per token), with the scales `convert_to_ternary(model, keep,
    per_channel, act_bits, head_scales)` would use. The model is not changed.

    Returns {module name: LayerStats}, in `named_modules()` order. Raises ValueError when no
    batch was given or no layer would be converted.
    """
    keep = tuple(keep)
    targets = {name: m for name, m in model.named_modules()
               if type(m) is nn.Linear and not is_kept(name, keep)}
    if not targets:
        raise ValueError("calibrate: no nn.Linear layer outside `keep`; nothing would be quantised")
    accs = {}
    for name, m in targets.items():
        parent, _, child = name.rpartition(".")
        rows = head_rows(model.get_submodule(parent), child, m) if head_scales else None
        accs[name] = _Accumulator(m, act_bits, per_channel, rows)
    handles = [m.register_forward_pre_hook(accs[name]) for name, m in targets.items()]
    was_training, seen = model.training, 0
    model.eval()
    try:
        for ids in batches:
            model(ids)
            seen += 1
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    if not seen:
        raise ValueError("calibrate: got no batch of calibration text")
    return {name: acc.stats() for name, acc in accs.items()}


def summarise(stats: dict[str, LayerStats]) -> dict[str, float]:
    """Whole-model figures for the metrics table: worst and mean output error, lowest SQNR,
    mean zero-trit share, largest absmax / p99.9 outlier ratio."""
    rows = list(stats.values())
    worst = max(stats, key=lambda n: stats[n].out_rel_error)
    return {"calib/out_rel_error_mean": sum(r.out_rel_error for r in rows) / len(rows),
            "calib/out_rel_error_max": stats[worst].out_rel_error,
            "calib/act_sqnr_db_min": min(r.act_sqnr_db for r in rows),
            "calib/weight_rel_error_mean": sum(r.weight_rel_error for r in rows) / len(rows),
            "calib/weight_zero_frac_mean": sum(r.weight_zero_frac for r in rows) / len(rows),
            "calib/outlier_ratio_max": max(r.act_absmax / max(r.act_p999, 1e-12) for r in rows),
            "calib/layers": float(len(rows))}
