"""Evaluation of any causal LM with the HF interface (`model(input_ids).logits`).

    results = evaluate(model, tokenizer, corpus.validation, tasks.validation, cfg.data.eval)

Text: perplexity and bits per byte (tokenizer-independent). Tasks: bits per answer byte given the
prompt (the sensitive metric, used for selection) and exact-match accuracy by greedy generation
with a 95% Wilson interval. Reference points: an untrained model of the same shape (the caller
evaluates it) and a character-level unigram baseline.
"""
from forge.eval.accuracy import Accuracy, exact_match, wilson_interval
from forge.eval.answers import answer_bits_per_byte
from forge.eval.baselines import unigram_bits_per_byte
from forge.eval.evaluate import evaluate
from forge.eval.size import model_size
from forge.eval.text import bits_per_byte, perplexity

__all__ = ["Accuracy", "answer_bits_per_byte", "bits_per_byte", "evaluate", "exact_match",
           "model_size", "perplexity", "unigram_bits_per_byte", "wilson_interval"]
