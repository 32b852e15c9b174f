"""Text corpus: determinism, splits, normalisation, user files and the offline hub path."""
from __future__ import annotations

import json
import shutil
import socket
import time
from pathlib import Path

import pytest

from forge.data.errors import DataError
from forge.data.text import load_corpus, normalise, split_documents
from tests.data.fixtures import corpus, small_config


def test_same_seed_same_splits_and_different_seed_differs():
    a, b = corpus(), load_corpus(small_config())
    assert (a.train, a.validation, a.test) == (b.train, b.validation, b.test)
    c = load_corpus(small_config(seed=1))
    assert set(c.test) != set(a.test) and len(c.test) == len(a.test)


def test_splits_are_disjoint_deduplicated_and_sized():
    c = corpus()
    n = len(c.train) + len(c.validation) + len(c.test)
    assert len(set(c.train) | set(c.validation) | set(c.test)) == n
    assert len(c.test) == len(c.validation) == -(-n * 5 // 100)  # ceil(5% of n)
    assert c.source_counts["stdlib_docstrings"] > 1000 and c.source_counts["pydoc_topics"] > 50
    assert c.num_bytes("train") > 500_000


def test_documents_are_whitespace_normalised():
    for doc in corpus().train[:500]:
        assert "\r" not in doc and "\t" not in doc and "\n\n\n" not in doc
        assert doc == doc.strip() and all(line == line.rstrip() for line in doc.split("\n"))
    assert normalise("a \t\r\n\r\n\r\n\nb  ") == "a\n\nb"


def test_split_needs_three_documents():
    with pytest.raises(DataError, match="2 documents"):
        split_documents(["a", "b"], 0, 0.05, 0.05)


def test_system_docs_flag_adds_debian_docs_when_present():
    present = any(Path("/usr/share/doc").glob("python3*/README*"))
    c = load_corpus(small_config(system_docs=True, stdlib_docstrings=False, pydoc_topics=False))
    if not present:
        pytest.skip("no /usr/share/doc/python3* on this machine")
    assert c.source_counts["system_docs"] > 0


def _user_files(tmp: Path) -> None:
    (tmp / "a.txt").write_text("A plain text document about ternary weights and packing.\n")
    (tmp / "sub").mkdir()
    (tmp / "sub" / "b.md").write_text("# Notes\n\nA markdown document about merging models.")
    lines = [{"text": f"JSON line document number {i} about evolutionary merging."} for i in range(3)]
    (tmp / "c.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")


def test_text_files_folder_and_glob(tmp_path):
    _user_files(tmp_path)
    only_user = dict(stdlib_docstrings=False, pydoc_topics=False, min_document_chars=10)
    c = load_corpus(small_config(text_files=(str(tmp_path),), **only_user))
    assert c.source_counts["text_files"] == 5
    g = load_corpus(small_config(text_files=(str(tmp_path / "**" / "*.md"), str(tmp_path / "a.txt"),
                                             str(tmp_path / "c.jsonl")), **only_user))
    assert sorted(g.train + g.validation + g.test) == sorted(c.train + c.validation + c.test)


def test_bad_text_files_path_names_the_key(tmp_path):
    with pytest.raises(DataError, match=r"data\.text_files\[0\]: no such file or folder"):
        load_corpus(small_config(text_files=(str(tmp_path / "missing"),)))
    with pytest.raises(DataError, match=r"data\.text_files\[0\]: no .* files match"):
        load_corpus(small_config(text_files=(str(tmp_path / "*.txt"),)))


def test_malformed_jsonl_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine line of text"}\n{"text": oops}\n')
    with pytest.raises(DataError, match=r"bad\.jsonl:2: not valid JSON"):
        load_corpus(small_config(text_files=(str(bad),)))
    bad.write_text('{"body": "no text field here"}\n')
    with pytest.raises(DataError, match=r"bad\.jsonl:1: no string field 'text'"):
        load_corpus(small_config(text_files=(str(bad),)))


def test_hf_dataset_fails_at_once_when_offline_flag_set(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(DataError, match=r"data\.hf_dataset: 'wikitext' .*HF_HUB_OFFLINE"):
        load_corpus(small_config(hf_dataset="wikitext"))
    assert time.monotonic() - start < 5


def test_hf_dataset_fails_fast_with_network_blocked(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    timeouts = []

    def blocked(address, timeout=None, *args, **kwargs):
        timeouts.append(timeout)
        raise socket.timeout("network blocked by the test")

    monkeypatch.setattr(socket, "create_connection", blocked)
    start = time.monotonic()
    with pytest.raises(DataError, match=r"data\.hf_dataset: 'wikitext' .*not reachable"):
        load_corpus(small_config(hf_dataset="wikitext"))
    assert time.monotonic() - start < 5
    assert timeouts and 0 < timeouts[0] <= 5  # the one connection attempt has a short timeout


def test_the_corpus_does_not_depend_on_what_the_process_imported():
    """A Ray worker imports ray before it builds the corpus; ray replaces a few stdlib functions.
    The docstrings are read from source, so both processes get the same text."""
    import subprocess
    import sys

    code = ("import hashlib, sys\n{pre}\nfrom forge.data.sources import stdlib_docstrings\n"
            "print(hashlib.sha256('\\0'.join(stdlib_docstrings()).encode()).hexdigest())")
    digests = [subprocess.run([sys.executable, "-c", code.format(pre=pre)], capture_output=True,
                              text=True, check=True).stdout.strip()
               for pre in ("", "import ray")]
    assert digests[0] == digests[1] and len(digests[0]) == 64


def test_a_run_gathers_its_corpus_once_and_every_later_process_reads_that_copy(tmp_path,
                                                                               monkeypatch):
    """Phases on other nodes read the run's corpus.json: the user's text files need not exist
    there, and a node with another Python (other stdlib docstrings) scores the same documents."""
    import forge.phases.common as common
    from forge.config import load
    from forge.data.text import read_corpus, save_corpus
    from forge.storage import RunStorage

    (tmp_path / "notes").mkdir()
    _user_files(tmp_path / "notes")
    only_user = ["data.stdlib_docstrings=false", "data.pydoc_topics=false",
                 "data.min_document_chars=10", f"data.text_files=[{tmp_path / 'notes'}]"]
    cfg = load(None, only_user)
    storage = RunStorage((tmp_path / "shared").as_uri(), cache_dir=tmp_path / "head")
    first = common.run_corpus(cfg, storage.local("r1"), storage)
    assert first.source_counts == {"text_files": 5}
    assert read_corpus(tmp_path / "shared" / "r1" / "corpus.json") == first  # in the storage

    shutil.rmtree(tmp_path / "notes")  # another node: the user's files are not there
    monkeypatch.setattr(common, "load_corpus", lambda _: pytest.fail("gathered the corpus again"))
    worker = RunStorage(storage.location, cache_dir=tmp_path / "worker")
    assert common.run_corpus(cfg, worker.local("r1"), worker) == first

    save_corpus(first, tmp_path / "ok.json")
    (tmp_path / "bad.json").write_text("{\"train\": 1}")
    with pytest.raises(DataError, match="bad.json: not a saved corpus"):
        read_corpus(tmp_path / "bad.json")

