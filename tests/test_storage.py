"""forge.storage.RunStorage: a plain runs directory used in place, and a `file://` URI reached
only through its filesystem API by two "nodes" that share nothing but the storage (each node is
one cache directory). No Ray: the behaviour is the filesystem's."""
from __future__ import annotations

import json
import os
import pickle
import posixpath
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

import forge.storage as storage_mod
from forge.pipeline.artifacts import (MANIFEST, ArtifactError, read_manifest, save_artifact,
                                      verify_artifact, write_manifest)
from forge.storage import RunStorage, StorageError


# --- helpers ------------------------------------------------------------------------------------

def make_artifact(path: Path, seed: int, extra: dict[str, bytes] | None = None) -> dict:
    """An artifact directory as save_artifact lays it out (safetensors weights, config.json,
    manifest with sha256), from random numpy weights so most tests need no torch model."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    weights = np.random.default_rng(seed).standard_normal((16, 8)).astype(np.float32)
    save_file({"w": weights}, str(path / "model.safetensors"))
    (path / "config.json").write_text(json.dumps({"seed": seed}))
    for name, data in (extra or {}).items():
        (path / name).write_bytes(data)
    return write_manifest(path, params=weights.size)


def tree(root: Path) -> dict[str, bytes]:
    """Every file under `root` (relative posix path -> bytes), lock files aside."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != ".pull.lock"}


def count_copies(monkeypatch) -> list[str]:
    """Record the destination of every file copy `_sync` makes."""
    copies: list[str] = []
    real = storage_mod._copy_file

    def counting(src_fs, src, dst_fs, dst):
        copies.append(dst)
        real(src_fs, src, dst_fs, dst)

    monkeypatch.setattr(storage_mod, "_copy_file", counting)
    return copies


@pytest.fixture
def shared(tmp_path) -> Path:
    """The storage both nodes reach (a directory behind a file:// URI)."""
    path = tmp_path / "shared" / "runs"
    path.mkdir(parents=True)
    return path


@pytest.fixture
def node_a(tmp_path, shared) -> RunStorage:
    return RunStorage(shared.as_uri(), cache_dir=tmp_path / "nodeA")


@pytest.fixture
def node_b(tmp_path, shared) -> RunStorage:
    return RunStorage(shared.as_uri(), cache_dir=tmp_path / "nodeB")


ART = "r1/cognate/champion"


# --- a plain path -------------------------------------------------------------------------------

def test_plain_path_is_used_in_place(tmp_path, monkeypatch):
    monkeypatch.setenv("FORGE_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "runs"
    s = RunStorage(root)
    assert not s.remote and s.local_root == root.resolve() and s.local() == root.resolve()
    assert s.local(ART) == root.resolve() / ART
    assert s.registry_path == root.resolve() / "registry.db"  # beside the runs
    assert s.uri(ART) == str(root.resolve() / ART)
    assert s.tune_storage("r1/tune") == (str(root.resolve() / "r1/tune"), None)
    make_artifact(s.local(ART), seed=0)
    before = {p: p.stat().st_mtime_ns for p in s.local(ART).iterdir()}
    assert s.pull(ART) == s.local(ART)
    s.push(ART)
    s.push("r1/never-written")  # nothing to copy on a shared directory
    assert {p: p.stat().st_mtime_ns for p in s.local(ART).iterdir()} == before
    assert not (tmp_path / "cache").exists()  # no mirror for a plain path


def test_plain_path_write_exists_move_remove(tmp_path):
    s = RunStorage(tmp_path / "runs")
    assert s.write_text("r1/config.yaml", "a: 1\n") == s.local("r1/config.yaml")
    assert s.local("r1/config.yaml").read_text() == "a: 1\n" and s.exists("r1/config.yaml")
    make_artifact(s.local("r1/staging"), seed=1)
    make_artifact(s.local(ART), seed=0, extra={"old.bin": b"old"})
    new = tree(s.local("r1/staging"))
    s.move("r1/staging", ART)
    assert tree(s.local(ART)) == new and not s.exists("r1/staging")
    assert sorted(p.name for p in s.local("r1/cognate").iterdir()) == ["champion"]
    s.remove(ART)
    s.remove("r1/config.yaml")
    s.remove("r1/not-there")  # missing is fine
    assert not s.exists(ART) and not s.exists("r1/config.yaml")


def test_rel_of_a_path_outside_the_root_is_refused(tmp_path, node_a):
    s = RunStorage(tmp_path / "runs")
    assert s.rel(s.local(ART)) == ART and s.rel("r1/x") == "r1/x"
    with pytest.raises(StorageError, match=r"^\S*elsewhere/m is not inside the runs location"):
        s.rel(tmp_path / "elsewhere" / "m")
    assert node_a.rel(node_a.local(ART)) == ART
    with pytest.raises(StorageError, match=f"not inside the runs location {re.escape(node_a.location)}$"):
        node_a.rel(tmp_path / "nodeB" / "x")


# --- a file:// URI, two nodes -------------------------------------------------------------------

def test_each_node_has_its_own_mirror(tmp_path, node_a, node_b):
    assert node_a.remote and node_b.remote
    assert node_a.local_root.parent == tmp_path / "nodeA" / "runs"
    assert node_b.local_root.parent == tmp_path / "nodeB" / "runs"
    assert node_a.local_root.name == node_b.local_root.name  # one name per location
    assert node_a.registry_path == node_a.local_root / "registry.db"
    assert node_a.uri(ART) == node_a.location + "/" + ART
    path, fs = node_a.tune_storage("r1/tune")
    assert path == (tmp_path / "shared" / "runs" / "r1" / "tune").as_posix() and fs is not None


def test_real_model_pushed_by_a_is_pulled_identical_by_b(shared, node_a, node_b):
    import torch
    from forge.models import CognateConfig, CognateForCausalLM

    torch.manual_seed(0)
    cfg = CognateConfig(vocab_size=97, d_model=32, n_layers=1, n_heads=2, d_ff=64, max_seq_len=32,
                        window=8, memory_chunk=4, trm_T=1, trm_n=1, trm_supervision_steps=1)
    model = CognateForCausalLM(cfg)
    manifest = save_artifact(model, node_a.local(ART), metadata={"vocab_size": 97})
    node_a.push(ART)
    assert not node_b.local(ART).exists()
    got = node_b.pull(ART)
    assert got == node_b.local(ART) and got.is_relative_to(node_b.local_root)
    assert tree(got) == tree(node_a.local(ART)) == tree(shared / ART)
    assert verify_artifact(got, manifest["digest"])["digest"] == manifest["digest"]
    loaded = CognateForCausalLM.from_pretrained(got)
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name


def test_changed_artifact_replaces_the_stale_mirror_copy(node_a, node_b):
    make_artifact(node_a.local(ART), seed=0, extra={"old.bin": b"only in v1"})
    node_a.push(ART)
    node_b.pull(ART)
    assert "old.bin" in tree(node_b.local(ART))
    v2 = make_artifact(node_a.local(ART), seed=1)  # new weights, new manifest, no old.bin
    node_a.push(ART)
    node_b.pull(ART)
    assert tree(node_b.local(ART)) == tree(node_a.local(ART))
    assert read_manifest(node_b.local(ART))["digest"] == v2["digest"]
    verify_artifact(node_b.local(ART), v2["digest"])


def test_a_directory_removed_from_storage_leaves_the_mirror_on_pull(shared, node_a, node_b):
    make_artifact(node_a.local(ART), seed=0)
    node_a.push(ART)
    node_b.pull(ART)
    node_a.remove(ART)
    assert not (shared / ART).exists() and not node_a.local(ART).exists()
    assert node_b.local(ART).is_dir()  # B has not looked yet
    assert not node_b.pull(ART).exists()
    assert (shared / "r1" / "cognate").is_dir()  # only the removed entry went


def test_pruned_checkpoints_are_deleted_from_storage_on_push(shared, node_a, node_b):
    ckpt = "r1/checkpoints/cognate"
    for step in (4, 8):
        make_artifact(node_a.local(f"{ckpt}/step_{step}"), seed=step)
    node_a.push(ckpt)
    assert sorted(p.name for p in (shared / ckpt).iterdir()) == ["step_4", "step_8"]
    node_b.pull(ckpt)
    shutil.rmtree(node_a.local(f"{ckpt}/step_4"))  # keep-last-k pruning on node A
    make_artifact(node_a.local(f"{ckpt}/step_12"), seed=12)
    node_a.push(ckpt)
    assert sorted(p.name for p in (shared / ckpt).iterdir()) == ["step_12", "step_8"]
    node_b.pull(ckpt)
    assert tree(node_b.local(ckpt)) == tree(node_a.local(ckpt)) == tree(shared / ckpt)


def stage_and_move(node_a, node_b) -> dict:
    """B holds v1 of ART; A stages v2 and moves it over ART, as the driver commits a phase.
    Returns v2's files."""
    make_artifact(node_a.local(ART), seed=0, extra={"old.bin": b"v1"})
    node_a.push(ART)
    node_b.pull(ART)
    make_artifact(node_a.local("r1/staging/champion"), seed=1)
    node_a.push("r1/staging/champion")
    new = tree(node_a.local("r1/staging/champion"))
    node_a.move("r1/staging/champion", ART)
    return new


def test_move_replaces_the_destination_in_storage_and_mirrors(shared, node_a, node_b):
    new = stage_and_move(node_a, node_b)
    assert tree(shared / ART) == new and tree(node_a.local(ART)) == new
    assert not node_a.exists("r1/staging/champion")
    assert not node_a.local("r1/staging/champion").exists()
    assert tree(node_b.pull(ART)) == new  # B's stale v1 (with old.bin) is replaced


@pytest.mark.parametrize("remote", [False, True], ids=["plain", "file-uri"])
def test_move_of_a_missing_source_keeps_the_destination(tmp_path, node_a, remote):
    s = node_a if remote else RunStorage(tmp_path / "runs")
    make_artifact(s.local(ART), seed=0)
    s.push(ART)
    kept = tree(s.local(ART))
    with pytest.raises(StorageError, match="r1/staging"):
        s.move("r1/staging", ART)
    assert s.exists(ART) and tree(s.pull(ART)) == kept


def test_remove_deletes_files_and_directories(shared, node_a, node_b):
    make_artifact(node_a.local(ART), seed=0)
    node_a.push(ART)
    node_a.write_text("r1/session.json", "{}")
    node_b.pull("r1")
    node_b.remove("r1/session.json")
    node_b.remove(ART)
    node_b.remove("r1/never-there")
    assert not (shared / "r1/session.json").exists() and not (shared / ART).exists()
    assert not node_b.local("r1/session.json").exists() and not node_b.local(ART).exists()
    assert not node_a.exists(ART) and not node_a.exists("r1/session.json")


def test_write_text_reaches_storage_and_other_nodes(shared, node_a, node_b):
    path = node_a.write_text("r1/config.yaml", "seed: 0\n")
    assert path == node_a.local("r1/config.yaml") and path.read_text() == "seed: 0\n"
    assert (shared / "r1/config.yaml").read_text() == "seed: 0\n"
    assert node_b.exists("r1/config.yaml") and node_b.exists("r1")
    assert not node_b.exists("r1/other.yaml")
    assert node_b.pull("r1/config.yaml").read_text() == "seed: 0\n"
    node_a.write_text("r1/config.yaml", "seed: 1\n")
    assert node_b.pull("r1/config.yaml").read_text() == "seed: 1\n"
    leftovers = [p for root in (shared, node_a.local_root) for p in root.rglob("*.tmp")]
    assert leftovers == []


def test_listdir_names_what_storage_holds(tmp_path, node_a, node_b):
    plain = RunStorage(tmp_path / "runs")
    for s in (plain, node_a):
        make_artifact(s.local("r1/cognate/a"), seed=0)
        make_artifact(s.local("r1/cognate/b"), seed=1)
        s.write_text("r1/cognate/notes.txt", "x")
        s.push("r1/cognate")
    assert plain.listdir("r1/cognate") == node_b.listdir("r1/cognate") == ["a", "b", "notes.txt"]
    assert plain.listdir("r1/none") == node_b.listdir("r1/none") == []
    assert not node_b.local("r1").exists()  # listing reads storage, it does not pull


def test_push_without_prune_keeps_what_other_nodes_wrote(shared, node_a, node_b):
    node_a.write_text("r1/wandb/run-a/log.txt", "from A")
    b_file = node_b.local("r1/wandb/run-b/log.txt")  # B's mirror never saw run-a
    b_file.parent.mkdir(parents=True)
    b_file.write_text("from B")
    node_b.push("r1/wandb", prune=False)
    assert sorted(p.name for p in (shared / "r1/wandb").iterdir()) == ["run-a", "run-b"]
    node_b.push("r1/wandb")  # the default: storage becomes an exact copy of B's mirror
    assert sorted(p.name for p in (shared / "r1/wandb").iterdir()) == ["run-b"]


def test_working_copy_pulls_and_pushes_back(node_a, node_b):
    ckpt = "r1/checkpoints/cognate"
    make_artifact(node_a.local(f"{ckpt}/step_4"), seed=4)
    node_a.push(ckpt)
    path, save = node_b.working_copy(ckpt)
    assert path == node_b.local(ckpt) and (path / "step_4" / MANIFEST).is_file()
    make_artifact(path / "step_8", seed=8)
    assert node_a.listdir(ckpt) == ["step_4"]  # nothing leaves B before save()
    save()
    assert node_a.listdir(ckpt) == ["step_4", "step_8"]
    assert tree(node_a.pull(ckpt)) == tree(path)


PULL_IN_ANOTHER_PROCESS = """
import pickle, sys
storage = pickle.loads(open(sys.argv[1], "rb").read())
print(storage.pull(sys.argv[2]))
"""


def test_pickled_storage_uses_the_receiving_process_cache(tmp_path, shared, monkeypatch):
    monkeypatch.setenv("FORGE_CACHE_DIR", str(tmp_path / "nodeA"))
    sender = RunStorage(shared.as_uri())
    make_artifact(sender.local(ART), seed=0)
    sender.push(ART)
    assert sender.local_root.is_relative_to(tmp_path / "nodeA")
    (tmp_path / "storage.pkl").write_bytes(pickle.dumps(sender))
    assert pickle.loads(pickle.dumps(sender)) == sender  # location and cache choice only
    env = {**os.environ, "FORGE_CACHE_DIR": str(tmp_path / "nodeB")}
    out = subprocess.run([sys.executable, "-c", PULL_IN_ANOTHER_PROCESS,
                          str(tmp_path / "storage.pkl"), ART],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    got = Path(out.stdout.strip())
    assert got.is_relative_to(tmp_path / "nodeB") and got.name == "champion"
    assert tree(got) == tree(sender.local(ART))


# --- manifests: copied last, and a match skips the copy ----------------------------------------

def test_manifest_is_copied_last(node_a, monkeypatch):
    make_artifact(node_a.local(ART), seed=0)
    copies = count_copies(monkeypatch)
    node_a.push(ART)
    names = [posixpath.basename(c) for c in copies]
    assert sorted(names) == ["config.json", MANIFEST, "model.safetensors"]
    assert names[-1] == MANIFEST


class NodeLost(Exception):
    """A process killed mid-sync (not an OSError, which storage may translate)."""


def test_an_interrupted_sync_leaves_no_manifest_to_vouch_for_it(shared, node_a, node_b,
                                                                 monkeypatch):
    make_artifact(node_a.local(ART), seed=0)
    node_a.push(ART)  # storage holds a complete v1 with its manifest
    node_b.pull(ART)
    make_artifact(node_a.local(ART), seed=1)
    real = storage_mod._copy_file

    def dies_before_manifest(src_fs, src, dst_fs, dst):
        if posixpath.basename(dst) == MANIFEST:
            raise NodeLost("node A lost mid-push")
        real(src_fs, src, dst_fs, dst)

    monkeypatch.setattr(storage_mod, "_copy_file", dies_before_manifest)
    with pytest.raises(NodeLost):
        node_a.push(ART)
    assert not (shared / ART / MANIFEST).exists()  # v1's manifest went before v2's data came
    assert (shared / ART / "model.safetensors").read_bytes() == \
        (node_a.local(ART) / "model.safetensors").read_bytes()
    monkeypatch.setattr(storage_mod, "_copy_file", real)
    node_b.pull(ART)  # B's v1 mirror must not stay "verified" either
    with pytest.raises(ArtifactError, match=f"no {MANIFEST}"):
        verify_artifact(node_b.local(ART))


def test_matching_manifest_skips_the_copy(node_a, node_b, monkeypatch):
    make_artifact(node_a.local(ART), seed=0)
    node_a.write_text("r1/config.yaml", "seed: 0\n")
    copies = count_copies(monkeypatch)
    node_a.push(ART)
    assert len(copies) == 3
    node_a.push(ART)
    assert len(copies) == 3  # unchanged manifest: nothing copied
    node_b.pull("r1")
    assert len(copies) == 3 + 4  # the artifact's three files and config.yaml
    node_b.pull("r1")
    assert len(copies) == 3 + 4 + 1  # only the file outside a manifest directory again
    make_artifact(node_a.local(ART), seed=1)
    node_a.push(ART)
    assert len(copies) == 3 + 4 + 1 + 3  # a new manifest: every file


# --- bad input ----------------------------------------------------------------------------------

@pytest.mark.parametrize("call", ["exists", "pull", "tune_storage"])
def test_unknown_scheme_is_a_one_line_storage_error(tmp_path, call):
    uri = "nosuchscheme://bucket/runs"
    s = RunStorage(uri, cache_dir=tmp_path / "cache")
    with pytest.raises(StorageError) as err:
        getattr(s, call)("r1")
    message = str(err.value)
    assert message.startswith(f"run.runs_dir {uri}: ") and "\n" not in message
    assert "nosuchscheme" in message.removeprefix(f"run.runs_dir {uri}: ")


def test_push_of_nothing_names_the_path(node_a):
    with pytest.raises(StorageError, match=r"^push r1/missing: nothing at \S+/r1/missing$"):
        node_a.push("r1/missing")


def test_a_secret_in_the_uri_is_never_printed(tmp_path):
    from forge.storage import masked

    uri = "s3://AKIAEXAMPLE:s3cr3t@bucket/runs?endpoint_override=127.0.0.1:9000&scheme=http"
    storage = RunStorage(uri, cache_dir=tmp_path)
    assert storage.display == ("s3://AKIAEXAMPLE:***@bucket/runs?endpoint_override=127.0.0.1:9000"
                               "&scheme=http")
    assert "s3cr3t" not in repr(storage) and "s3cr3t" not in str(storage.local_root)
    assert masked("runs") == "runs" and masked("s3://bucket/runs") == "s3://bucket/runs"
    with pytest.raises(StorageError) as err:
        RunStorage("nope://user:s3cr3t@host/runs").exists("")
    assert "s3cr3t" not in str(err.value) and "user:***@host" in str(err.value)
