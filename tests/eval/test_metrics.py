"""Metric sanity: uniform model perplexity = V, oracle scores 1.0, constant answer = its share."""
from __future__ import annotations

import math
from collections import Counter

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from forge.data.tasks import load_tasks
from forge.eval import (answer_bits_per_byte, bits_per_byte, exact_match, perplexity,
                        unigram_bits_per_byte, wilson_interval)
from forge.eval.accuracy import accuracy_of
from forge.eval.answers import answer_bytes
from forge.eval.generate import greedy_generate
from forge.eval.text import text_nll
from tests.data.fixtures import (UniformLM, answering_model, corpus, sums_config, tasks,
                                 tokenizer)


def _tiny_gpt2(vocab: int) -> GPT2LMHeadModel:
    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=vocab,
                                      n_positions=128)).eval()


def test_uniform_model_perplexity_is_vocab_size():
    tok, docs = tokenizer(), corpus().validation[:20]
    model = UniformLM(len(tok))
    assert perplexity(model, tok, docs, seq_len=64) == pytest.approx(512, rel=1e-5)
    nll = text_nll(model, tok, docs, seq_len=64)
    assert bits_per_byte(model, tok, docs, seq_len=64) == pytest.approx(
        nll.tokens * math.log2(512) / nll.bytes, rel=1e-6)
    assert nll.bytes == sum(len(d.encode()) for d in docs)


def test_window_length_does_not_change_the_token_count():
    tok, docs = tokenizer(), corpus().validation[:10]
    a = text_nll(UniformLM(len(tok)), tok, docs, seq_len=16)
    b = text_nll(UniformLM(len(tok)), tok, docs, seq_len=200)
    assert a.tokens == b.tokens == sum(len(tok.encode(d)) + 1 for d in docs)


def test_uniform_model_answer_bits():
    tok, examples = tokenizer(), tasks().validation[:30]
    tokens = sum(len(tok.encode(e.completion)) + 1 for e in examples)  # answer + eos
    expected = tokens * math.log2(512) / sum(answer_bytes(e) for e in examples)
    assert answer_bits_per_byte(UniformLM(512), tok, examples) == pytest.approx(expected, rel=1e-6)


def test_oracle_model_scores_one_and_needs_almost_no_bits():
    tok, examples = tokenizer(), tasks().validation
    oracle = answering_model(tok, examples, [e.answer for e in examples])
    acc = exact_match(oracle, tok, examples, max_new_tokens=24, batch_size=8)
    assert (acc.correct, acc.n, acc.accuracy, acc.mean_score) == (60, 60, 1.0, 1.0)
    assert acc.low == pytest.approx(wilson_interval(60, 60)[0]) and acc.high == 1.0
    assert answer_bits_per_byte(oracle, tok, examples) < 1e-6
    assert accuracy_of(examples, [e.answer for e in examples]).accuracy == 1.0


def test_constant_answer_model_scores_the_share_the_data_gives():
    tok = tokenizer()
    examples = load_tasks(sums_config()).test
    constant, hits = Counter(e.answer for e in examples).most_common(1)[0]
    model = answering_model(tok, examples, [constant] * len(examples))
    acc = exact_match(model, tok, examples, max_new_tokens=8)
    assert acc.correct == hits and acc.accuracy == pytest.approx(hits / len(examples))


def test_wilson_interval_known_values():
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.27753), abs=1e-5)
    assert wilson_interval(5, 10) == pytest.approx((0.23659, 0.76341), abs=1e-5)
    assert wilson_interval(81, 263) == pytest.approx((0.25529, 0.36621), abs=1e-4)  # by hand
    with pytest.raises(ValueError):
        wilson_interval(3, 0)


def test_batched_greedy_equals_one_at_a_time():
    tok = tokenizer()
    model = _tiny_gpt2(len(tok))
    prompts = [tok.encode(e.prompt) for e in tasks().validation[::7]]
    assert len({len(p) for p in prompts}) > 2                  # really different lengths
    batched = greedy_generate(model, prompts, 6, tok.eos_token_id, tok.pad_token_id, batch_size=9)
    single = [greedy_generate(model, [p], 6, tok.eos_token_id, tok.pad_token_id)[0]
              for p in prompts]
    assert batched == single and all(len(x) <= 6 for x in batched)


def test_unigram_baseline_by_hand():
    # train "aab": N = 3, K = 2, denominator 6; p(a) = 3/6, p(b) = 2/6, unseen p = 1/6
    bits = unigram_bits_per_byte(["aab"], ["ab", "c"])
    assert bits == pytest.approx((1 + math.log2(3) + math.log2(6)) / 3)
    real = unigram_bits_per_byte(corpus().train, corpus().validation)
    assert 4.0 < real < 5.5                                    # English text: ~4.4-4.8 bits/char
