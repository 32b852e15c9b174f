"""RunStorage against a real S3 API: moto's S3 server on loopback, reached through pyarrow's
S3FileSystem exactly as a cluster would reach `s3://bucket/prefix` (only the endpoint differs).
Two cache directories stand for two nodes that share nothing but the bucket."""
from __future__ import annotations

import logging
import posixpath
import uuid

import pytest

pytest.importorskip("moto.server", reason="S3 tests need moto[server] (pip install 'moto[server]')")
import pyarrow.fs as pafs  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402

from forge.pipeline.artifacts import MANIFEST, read_manifest, verify_artifact  # noqa: E402
from forge.storage import RunStorage, StorageError, open_filesystem  # noqa: E402
from tests.test_storage import count_copies, make_artifact, stage_and_move, tree  # noqa: E402

ART = "r1/cognate/champion"


@pytest.fixture(scope="module")
def endpoint():
    """One S3 server for the module; any credentials are accepted, so fixed test ones are set."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no per-request log lines
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", "forge-test")
        env.setenv("AWS_SECRET_ACCESS_KEY", "forge-test")
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        env.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never probe an instance metadata service
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        yield f"{host}:{port}"
        server.stop()


@pytest.fixture
def admin(endpoint) -> pafs.S3FileSystem:
    """A direct S3 client, to make buckets and to look at the objects themselves."""
    return pafs.S3FileSystem(endpoint_override=endpoint, scheme="http", region="us-east-1",
                             allow_bucket_creation=True)


@pytest.fixture
def bucket(admin) -> str:
    name = f"forge-{uuid.uuid4().hex[:10]}"  # a fresh bucket per test
    admin.create_dir(name)
    return name


def s3_uri(bucket: str, endpoint: str) -> str:
    return f"s3://{bucket}/runs?endpoint_override={endpoint}&scheme=http"


@pytest.fixture
def node_a(tmp_path, bucket, endpoint) -> RunStorage:
    return RunStorage(s3_uri(bucket, endpoint), cache_dir=tmp_path / "nodeA")


@pytest.fixture
def node_b(tmp_path, bucket, endpoint) -> RunStorage:
    return RunStorage(s3_uri(bucket, endpoint), cache_dir=tmp_path / "nodeB")


def objects(admin: pafs.S3FileSystem, prefix: str) -> dict[str, bytes]:
    """Every object under `prefix` (relative key -> bytes), read straight from the bucket."""
    out = {}
    selector = pafs.FileSelector(prefix, recursive=True, allow_not_found=True)
    for info in admin.get_file_info(selector):
        if info.type == pafs.FileType.File:
            with admin.open_input_stream(info.path) as f:
                out[posixpath.relpath(info.path, prefix)] = f.read()
    return out


def test_push_from_a_pull_on_b(admin, bucket, node_a, node_b):
    v1 = make_artifact(node_a.local(ART), seed=0, extra={"old.bin": b"only in v1"})
    node_a.push(ART)
    assert objects(admin, f"{bucket}/runs/{ART}") == tree(node_a.local(ART))
    got = node_b.pull(ART)
    assert got.is_relative_to(node_b.local_root) and tree(got) == tree(node_a.local(ART))
    verify_artifact(got, v1["digest"])
    v2 = make_artifact(node_a.local(ART), seed=1)  # a new version without old.bin
    node_a.push(ART)
    assert sorted(objects(admin, f"{bucket}/runs/{ART}")) == ["config.json", MANIFEST,
                                                             "model.safetensors"]
    assert read_manifest(node_b.pull(ART))["digest"] == v2["digest"]
    assert tree(node_b.local(ART)) == tree(node_a.local(ART))


def test_matching_manifest_skips_the_copy(node_a, node_b, monkeypatch):
    make_artifact(node_a.local(ART), seed=0)
    copies = count_copies(monkeypatch)
    node_a.push(ART)
    assert [posixpath.basename(c) for c in copies][-1] == MANIFEST and len(copies) == 3
    node_a.push(ART)
    node_b.pull(ART)
    assert len(copies) == 6  # the repeated push copied nothing, B's first pull three files
    node_b.pull(ART)
    assert len(copies) == 6


def test_write_text_exists_and_remove(admin, bucket, node_a, node_b):
    node_a.write_text("r1/config.yaml", "seed: 0\n")
    make_artifact(node_a.local(ART), seed=0)
    node_a.push(ART)
    assert objects(admin, f"{bucket}/runs/r1")["config.yaml"] == b"seed: 0\n"
    assert node_b.exists("r1/config.yaml") and node_b.exists(ART) and node_b.exists("r1")
    assert not node_b.exists("r1/nothing") and node_b.listdir("r1") == ["cognate", "config.yaml"]
    node_b.pull("r1")
    node_b.remove(ART)
    node_b.remove("r1/config.yaml")
    node_b.remove("r1/never-there")
    assert objects(admin, f"{bucket}/runs/r1") == {}
    assert not node_b.local(ART).exists() and not node_a.exists(ART)
    assert not node_a.pull(ART).exists()  # A's mirror follows storage on its next pull


def test_move_replaces_the_destination(admin, bucket, node_a, node_b):
    new = stage_and_move(node_a, node_b)
    assert objects(admin, f"{bucket}/runs/{ART}") == new
    assert objects(admin, f"{bucket}/runs/r1/staging") == {}
    assert not node_a.exists("r1/staging/champion")
    assert tree(node_a.local(ART)) == new and tree(node_b.pull(ART)) == new


def test_tune_storage_is_the_s3_filesystem(bucket, node_a, node_b):
    path, fs = node_a.tune_storage("r1/tune")
    assert isinstance(fs, pafs.S3FileSystem) and path == f"{bucket}/runs/r1/tune"
    with fs.open_output_stream(f"{path}/experiment_state.json") as f:  # as Tune would write it
        f.write(b'{"trials": 2}')
    assert node_b.exists("r1/tune/experiment_state.json")
    assert node_b.pull("r1/tune/experiment_state.json").read_bytes() == b'{"trials": 2}'


def test_uri_of_a_path_keeps_the_query(bucket, node_a):
    fs, root = open_filesystem(node_a.uri("r1/config.yaml"))
    assert isinstance(fs, pafs.S3FileSystem) and root == f"{bucket}/runs/r1/config.yaml"


def test_missing_bucket_is_a_storage_error(tmp_path, endpoint):
    uri = s3_uri(f"forge-missing-{uuid.uuid4().hex[:8]}", endpoint)
    s = RunStorage(uri, cache_dir=tmp_path / "node")
    with pytest.raises(StorageError, match="forge-missing-"):
        s.write_text("r1/config.yaml", "seed: 0\n")
