"""KV cache (`forge.models.cache`): cached decoding gives the uncached logits and greedy tokens,
for both artifact kinds, across memory-chunk boundaries (chunk 4) and the attention window (6)."""
from __future__ import annotations

import pytest
import torch

from forge.data.tokenizer import load_tokenizer
from forge.eval.generate import _greedy_batch, _greedy_cached, greedy_generate
from forge.models.cache import CognateCache
from forge import load_model
from forge.serve.engine import CompletionEngine, SamplingParams
from tests.quant.conftest import small_model

KINDS = ("cognate/fp", "bitnet/ternary")
PROMPT = [11, 40, 99, 7, 260]
TOL = 1e-5


def _ids(n: int, rows: int = 2, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(8, 288, (rows, n), generator=gen)


@torch.no_grad()
def _incremental_logits(model, ids: torch.Tensor, pieces: list[int]) -> torch.Tensor:
    """Logits of ids read through the cache in pieces of the given sizes (prefill first)."""
    out = model(ids[:, :pieces[0]], use_cache=True)
    parts, t = [out.logits], pieces[0]
    for size in pieces[1:]:
        out = model(ids[:, t:t + size], cache=out.cache)
        parts.append(out.logits)
        t += size
    assert t == ids.shape[1] and out.cache.length == t
    return torch.cat(parts, 1)


def _check_ternary(diff: torch.Tensor, pieces: list[int]) -> None:
    """A BitNet layer rounds its input to 8-bit codes: where a value lies within float rounding
    (~1e-7, from matmuls of other shapes) of a code boundary, the cached and the full pass can
    pick neighbouring codes, and that position's logits then differ by ~1e-3 (measured: 1 of 60
    positions, 1.5e-3). Everywhere else they agree to 1e-5, and greedy tokens are identical."""
    assert (diff < TOL).float().mean() >= 0.9, pieces
    assert diff.max() < 2e-2, pieces


@pytest.mark.parametrize("kind", KINDS)
def test_cached_logits_equal_uncached(tiny_run, kind):
    model = load_model(tiny_run / kind).eval()
    ids = _ids(30)  # 7.5 memory chunks, 5 attention windows
    with torch.no_grad():
        full = model(ids).logits
    for pieces in ([1] * 30, [5] + [1] * 25, [9, 3, 1, 4, 13]):  # chunks split every way
        diff = (_incremental_logits(model, ids, pieces) - full).abs().amax(-1)  # (B, T)
        if kind == "cognate/fp":
            assert diff.max() < TOL, pieces
        else:  # see _check_ternary
            _check_ternary(diff, pieces)
    # the cache keeps only the keys a later query can see: window - 1 positions
    out = model(ids, use_cache=True)
    assert {k.shape[2] for k, _ in out.cache.kv.values()} == {model.config.window - 1}
    cfg = model.config
    applications = cfg.trm_supervision_steps * cfg.trm_T * (cfg.trm_n + 1)
    assert len(out.cache.kv) == applications * cfg.n_layers


@pytest.mark.parametrize("kind", KINDS)
def test_generate_with_cache_gives_the_uncached_tokens(tiny_run, kind):
    model = load_model(tiny_run / kind).eval()
    prompt = torch.tensor([PROMPT, PROMPT[::-1]])
    with torch.no_grad():
        fast = model.generate(prompt, max_new_tokens=30, do_sample=False, use_cache=True)
        slow = model.generate(prompt, max_new_tokens=30, do_sample=False, use_cache=False)
    assert fast.shape == (2, 35) and torch.equal(fast, slow)
    tok = load_tokenizer(tiny_run / "tokenizer.json")
    greedy = greedy_generate(model, [PROMPT], 30, eos_id=-1, pad_id=tok.pad_token_id)[0]
    assert greedy == fast[0, 5:].tolist()  # forge generate's decoder uses the cache too


def test_greedy_decoders_agree_and_stop_at_eos(tiny_run):
    model = load_model(tiny_run / "cognate/fp").eval()
    prompts = [PROMPT, PROMPT[::-1], [3, 9, 27, 81, 243]]
    want = _greedy_batch(model, prompts, 24, eos_id=-1, pad_id=2)
    assert _greedy_cached(model, prompts, 24, eos_id=-1) == want
    eos = want[0][6]  # pretend the 7th token of row 0 ends a sequence
    cut = _greedy_cached(model, prompts, 24, eos_id=eos)
    assert cut == _greedy_batch(model, prompts, 24, eos_id=eos, pad_id=2)
    assert cut[0] == want[0][:want[0].index(eos)]


def test_engine_with_and_without_cache_complete_alike(tiny_run):
    tok = load_tokenizer(tiny_run / "tokenizer.json")
    texts = []
    for use_cache in (True, False):
        engine = CompletionEngine(load_model(tiny_run / "bitnet/ternary"), tok, "m", use_cache)
        greedy = SamplingParams(max_tokens=24, temperature=0.0)
        sampled = SamplingParams(max_tokens=12, temperature=1.0, n=3, seed=5, stop=(" ",))
        texts.append([engine.complete(PROMPT, greedy), engine.complete(PROMPT, sampled)])
    assert texts[0] == texts[1]


def test_beam_search_with_cache_gives_the_uncached_beams():
    model = small_model(seed=2, vocab_size=288, max_seq_len=64).eval()
    prompt = _ids(4, rows=1, seed=5)
    with torch.no_grad():
        beams = [model.generate(prompt, max_new_tokens=14, num_beams=3, do_sample=False,
                                use_cache=c) for c in (True, False)]
    assert torch.equal(beams[0], beams[1])


def test_select_keeps_rows_of_the_cache():
    model = small_model(seed=1, vocab_size=288, max_seq_len=64).eval()
    ids = _ids(20, rows=3, seed=2)
    with torch.no_grad():
        want = model(ids[1:2]).logits[:, 12:]
        out = model(ids[:, :12], use_cache=True)
        out.cache.select(torch.tensor([1]))  # rows 0 and 2 finished
        got = model(ids[1:2, 12:], cache=out.cache).logits
    assert (got - want).abs().max() < TOL


@pytest.mark.parametrize("fields", [dict(memory_enabled=False, n_layers=2),
                                    dict(n_layers=2, trm_supervision_steps=2, trm_n=2, window=3)])
def test_other_shapes_of_the_model_cache_exactly(fields):
    model = small_model(seed=4, vocab_size=288, max_seq_len=64, **fields).eval()
    ids = _ids(21, seed=3)
    with torch.no_grad():
        full = model(ids).logits
    assert (_incremental_logits(model, ids, [2] + [1] * 19) - full).abs().max() < TOL


def test_cache_bad_use_is_a_clear_error():
    model = small_model(seed=1, vocab_size=288).eval()
    ids = _ids(6)
    with pytest.raises(ValueError, match="attention_mask: padding"):
        model(ids, attention_mask=torch.tensor([[1] * 6, [1] * 5 + [0]]), use_cache=True)
    with pytest.raises(ValueError, match="expected a CognateCache"):
        model(ids, cache=object())
    with pytest.raises(ValueError, match="model.eval"):
        model.train()(ids, cache=CognateCache(model.config.window))


def test_kv_cache_benchmark_measures_both_paths(tiny_run, monkeypatch):
    from actors.bench import kv_cache

    monkeypatch.setitem(kv_cache._RUN, "run", tiny_run)
    monkeypatch.setattr(kv_cache, "KINDS", {"cognate/fp": ()})
    monkeypatch.setattr(kv_cache, "QUICK_LENGTHS", (4, 12))
    out = kv_cache.measure(quick=True)
    for n in (4, 12):
        assert out[f"cognate/fp_{n}_cached_tokens_per_s"] > 0
        assert out[f"cognate/fp_{n}_speedup"] == pytest.approx(
            out[f"cognate/fp_{n}_cached_tokens_per_s"] / out[f"cognate/fp_{n}_uncached_tokens_per_s"])
