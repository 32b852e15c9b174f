"""`forge.bench bitnet --quick`: the benchmark runs and its sizes satisfy the issue's targets."""
from __future__ import annotations

from forge.bench import bitnet


def test_quick_bench_measures_sizes_and_speeds():
    facts = bitnet.setup(quick=True)
    assert facts["ternary_layers"] == 12 and facts["d_model_layers_vocab"] == (64, 1, 2048)
    out = bitnet.measure(quick=True)
    assert set(out) == set(bitnet.UNITS)
    assert 1.6 <= out["linear_bits_per_weight"] <= 1.62
    assert out["artifact_bytes"] < out["fp16_export_bytes"] < out["fp32_export_bytes"]
    assert out["artifact_bytes"] < out["artifact_fp32_others_bytes"]
    assert out["ratio_to_fp32"] == out["fp32_export_bytes"] / out["artifact_bytes"]
    assert all(out[k] > 0 for k in ("pack_mb_per_s", "unpack_mb_per_s", "fp_tokens_per_s",
                                     "ternary_packed_tokens_per_s", "ternary_ste_tokens_per_s"))
