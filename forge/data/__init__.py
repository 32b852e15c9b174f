"""Offline data: text corpus, reasoning tasks, tokenizer and batching (DESIGN.md section 6).

    corpus = load_corpus(cfg.data)          # forge.data.text
    tasks = load_tasks(cfg.data)            # forge.data.tasks
    tok = train_tokenizer(corpus.train + task_texts(tasks.train), cfg.data.vocab_size, cache)

Nothing here downloads anything unless `data.hf_dataset` is set.
"""
from forge.data.errors import DataError

__all__ = ["DataError"]
