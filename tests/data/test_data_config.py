"""The data section of the config: the shipped YAML loads, and errors name the key typed."""
from __future__ import annotations

from dataclasses import replace

import pytest

from forge.config import ConfigError, load, load_dict
from forge.config.data import DataConfig
from forge.data.tasks import load_tasks


def test_shipped_pipeline_data_block_is_the_default_but_cpu_sized_and_its_tasks_generate():
    cfg = load()
    # The default pipeline keeps the data defaults but shorter sequences and a smaller
    # evaluation, so Phase 1 fits in minutes on 2 cores.
    cpu_sized = replace(DataConfig(), seq_len=64,
                        eval=replace(DataConfig().eval, max_documents=40, max_task_examples=10,
                                     max_new_tokens=12))
    assert cfg.data == cpu_sized
    small = load(None, ["data.task_train_size=10", "data.task_validation_size=5",
                        "data.task_test_size=5"]).data
    assert len(load_tasks(small).test) == 6  # ceil(5 * 2/6) + 4 * ceil(5 * 1/6)


@pytest.mark.parametrize("data, key", [
    ({"tasks": [{"name": "chain_sum", "wieght": 1}]}, r"data\.tasks\[0\]\.wieght: unknown key"),
    ({"tasks": [{"name": "chain_sum", "weight": 0}]}, r"data\.tasks\[0\]\.weight"),
    ({"tasks": [{"weight": 1}]}, r"data\.tasks\[0\]\.name: missing required key"),
    ({"tasks": [{"name": "gcd"}, {"name": "gcd"}]}, r"data\.tasks\[1\]\.name: 'gcd' appears twice"),
    ({"vocab_size": 100}, r"data\.vocab_size"),
    ({"text_files": "notes.txt"}, r"data\.text_files"),
    ({"eval": {"max_new_tokens": 0}}, r"data\.eval\.max_new_tokens"),
])
def test_bad_values_name_the_key(data, key):
    with pytest.raises(ConfigError, match=key):
        load_dict({"data": data})
