"""Run storage: where `<run_id>/...` lives, a local directory or a URI every node can reach.

A plain path (the default, `runs`) is used as it is: every process reads and writes it directly,
which is right on one machine or on a cluster whose nodes mount one shared disk.

A URI (`s3://bucket/prefix`, `gs://...`, `file:///mnt/share/runs`; anything pyarrow's
`FileSystem.from_uri` knows, else an fsspec filesystem) is reached only through its filesystem
API, the way Ray Train and Tune use `storage_path`. Each node keeps a mirror of the files it
works on under its own cache directory (`FORGE_CACHE_DIR`, default `~/.cache/forge`): a process
`pull`s what it is about to read and `push`es what it wrote. Storage is the truth, a mirror only a
cache, so no process depends on another node's disk.

Artifact and checkpoint directories carry a manifest (`manifest.json`, sha256 of every file). A
sync copies the manifest last and skips a directory whose manifest already matches, so a
directory with a current manifest is complete, and unchanged models are not copied again.
"""
from __future__ import annotations

import fcntl
import functools
import hashlib
import os
import posixpath
import re
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urlsplit, urlunsplit

import pyarrow.fs as pafs

MANIFEST = "manifest.json"  # forge.pipeline.artifacts.MANIFEST (not imported: keep this leaf)
REGISTRY_FILE = "registry.db"
CACHE_ENV = "FORGE_CACHE_DIR"
_URI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


class StorageError(RuntimeError):
    """The run storage could not be opened or read; the message names the location."""


def is_uri(location: str) -> bool:
    return bool(_URI.match(str(location)))


def masked(location: str) -> str:
    """`location` with the secret of a `key:secret@` URI replaced by ***."""
    parts = urlsplit(location) if is_uri(location) else None
    if parts is None or parts.password is None:
        return location
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def default_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "forge")


def _wrap_os_errors(method: Callable) -> Callable:
    """An unreachable endpoint or a missing bucket (pyarrow raises OSError) becomes one line
    naming the operation and the location."""
    @functools.wraps(method)
    def wrapped(self: "RunStorage", *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except OSError as err:
            what = " ".join([method.__name__, *map(str, args)])
            raise StorageError(f"{what} at {self.display}: {str(err).splitlines()[0]}") from None
    return wrapped


class RunStorage:
    """The runs location of a pipeline (`run.runs_dir`): paths are relative to its root, '/'-joined.

    `local(rel)` is where `rel` lives on this node (the storage itself for a plain path, the
    node's mirror for a URI); `pull` and `push` copy between the two and do nothing for a plain
    path. Only the location string and cache directory are pickled, so a RunStorage can be sent
    to any Ray worker, where it opens the filesystem again and uses that node's cache.
    """

    def __init__(self, location: str | Path, cache_dir: str | Path | None = None):
        self.remote = is_uri(str(location))
        # A directory is made absolute here, in the driver: Ray workers may run in another cwd.
        self.location = str(location) if self.remote else str(Path(location).resolve())
        self._cache_dir = str(cache_dir) if cache_dir else None
        self._fs: pafs.FileSystem | None = None
        self._root = ""

    def __getstate__(self) -> dict:
        return {"location": self.location, "cache_dir": self._cache_dir}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["location"], state["cache_dir"])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunStorage) and self.__getstate__() == other.__getstate__()

    def __hash__(self) -> int:
        return hash((self.location, self._cache_dir))

    def __repr__(self) -> str:
        return f"RunStorage({self.display!r})"

    @property
    def display(self) -> str:
        """The location as printed and logged (a secret in the URI masked)."""
        return masked(self.location)

    @property
    def local_root(self) -> Path:
        """This node's view of the root: the directory itself, or this node's mirror of the URI."""
        if not self.remote:
            return Path(self.location).resolve()
        cache = Path(self._cache_dir) if self._cache_dir else default_cache_dir()
        parts = urlsplit(self.location)  # readable: scheme, bucket and path (no secret, no query)
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{parts.scheme}_{parts.hostname}{parts.path}")[-60:]
        tag = hashlib.sha256(self.location.encode()).hexdigest()[:10]
        return cache / "runs" / f"{slug}-{tag}"

    @property
    def registry_path(self) -> Path:
        """The registry database: beside the runs for a directory, in the head node's mirror for
        a URI (SQLite needs a local disk; the RegistryActor stays on the head node)."""
        return self.local_root / REGISTRY_FILE

    def local(self, rel: str = "") -> Path:
        return self.local_root / rel if rel else self.local_root

    def rel(self, path: str | Path) -> str:
        """`path` (under this node's `local_root`, or already relative) as a storage path."""
        p = Path(path)
        if not p.is_absolute():
            return p.as_posix()
        try:
            return p.resolve().relative_to(self.local_root.resolve()).as_posix()
        except ValueError:
            raise StorageError(f"{path} is not inside the runs location {self.display}") from None

    def uri(self, rel: str = "") -> str:
        """A location string for `rel`: a path, or a URI for a remote store."""
        if not self.remote:
            return str(self.local(rel))
        parts = urlsplit(self.location)  # rel goes into the path, before any ?query
        return urlunsplit(parts._replace(path=_join(parts.path.rstrip("/"), rel)))

    def tune_storage(self, rel: str) -> tuple[str, pafs.FileSystem | None]:
        """(`storage_path`, `storage_filesystem`) for a Ray Tune RunConfig that keeps its
        experiment state at `rel` in this storage."""
        if not self.remote:
            return str(self.local(rel)), None
        fs, root = self._open()
        return _join(root, rel), fs

    # --- reading and writing storage -------------------------------------------------------

    def _open(self) -> tuple[pafs.FileSystem, str]:
        if self._fs is None:
            self._fs, self._root = open_filesystem(self.location)
        return self._fs, self._root

    def _path(self, rel: str) -> str:
        return _join(self._open()[1], rel)

    @_wrap_os_errors
    def exists(self, rel: str) -> bool:
        if not self.remote:
            return self.local(rel).exists()
        fs = self._open()[0]
        return fs.get_file_info(self._path(rel)).type != pafs.FileType.NotFound

    @_wrap_os_errors
    def listdir(self, rel: str) -> list[str]:
        """Names directly under `rel` in storage (empty when it is missing)."""
        if not self.remote:
            local = self.local(rel)
            return sorted(p.name for p in local.iterdir()) if local.is_dir() else []
        return sorted(posixpath.basename(i.path) for i in _listing(self._open()[0], self._path(rel)))

    @_wrap_os_errors
    def pull(self, rel: str) -> Path:
        """Bring `rel` (file or directory) from storage into this node's mirror; returns the
        local path. A mirror entry that storage no longer has is removed."""
        local = self.local(rel)
        if not self.remote:
            return local
        fs = self._open()[0]
        with self._lock():
            _sync(fs, self._path(rel), _LOCAL, str(local))
        return local

    @_wrap_os_errors
    def push(self, rel: str, prune: bool = True) -> None:
        """Copy `rel` from this node's mirror to storage; with `prune`, storage's entry becomes an
        exact copy (files the mirror no longer has are deleted there too)."""
        if not self.remote:
            return
        local = self.local(rel)
        if not local.exists():
            raise StorageError(f"push {rel}: nothing at {local}")
        _sync(_LOCAL, str(local), self._open()[0], self._path(rel), prune)

    def pull_or_make(self, rel: str, make: Callable[[Path], None]) -> Path:
        """A run file made once for everyone (tokenizer, corpus): pulled when storage has it,
        else `make(local path)` writes it here and it is pushed for the other nodes."""
        local = self.pull(rel)
        if not local.is_file():
            make(local)
            self.push(rel)
        return local

    def working_copy(self, rel: str) -> tuple[Path, Callable[[], None]]:
        """A directory others may have written (checkpoints): pulled onto this node, and the
        function that pushes it back after each change."""
        return self.pull(rel), lambda: self.push(rel)

    @_wrap_os_errors
    def move(self, src: str, dst: str) -> None:
        """Replace `dst` with `src` in storage (and in this node's mirror)."""
        if not self.exists(src):  # checked first: a missing src must not cost dst
            raise StorageError(f"move {src} -> {dst}: nothing at {self.uri(src)}")
        if not self.remote:
            _replace_dir(self.local(src), self.local(dst))
            return
        fs = self._open()[0]
        _sync(fs, self._path(src), fs, self._path(dst))
        fs.delete_dir(self._path(src))
        if self.local(src).exists():
            _replace_dir(self.local(src), self.local(dst))

    @_wrap_os_errors
    def remove(self, rel: str) -> None:
        """Delete `rel` from storage and from this node's mirror; missing is fine."""
        if self.remote:
            fs = self._open()[0]
            info = fs.get_file_info(self._path(rel))
            if info.type == pafs.FileType.Directory:
                fs.delete_dir(self._path(rel))
            elif info.type == pafs.FileType.File:
                fs.delete_file(self._path(rel))
        _remove_local(self.local(rel))

    def check_writable(self) -> None:
        """A wrong bucket, missing credentials or a read-only disk fail here, in one line,
        before any work starts: a probe file for a URI; a directory is only looked at (it may
        not exist yet, and nothing is created for bad input)."""
        if not self.remote:
            return self._check_local_writable()
        probe = f".forge-write-check-{uuid.uuid4().hex[:8]}"
        try:
            self.write_text(probe, "ok")
        except PermissionError as err:  # a local directory (OSError subclass not wrapped there)
            raise StorageError(f"run.runs_dir {self.display}: not writable ({err.strerror})") from None
        self.remove(probe)

    def _check_local_writable(self) -> None:
        root = self.local_root
        existing = next(p for p in (root, *root.parents) if p.exists())
        if not existing.is_dir():
            raise StorageError(f"run.runs_dir {self.display}: {existing} is not a directory")
        for path in (existing, self.registry_path):  # access() also sees a read-only mount
            if path.exists() and not os.access(path, os.W_OK):
                raise StorageError(f"run.runs_dir {self.display}: not writable ({path} is read-only)")

    def write_text(self, rel: str, text: str) -> Path:
        """Write a small file (config, session, report) to the mirror and to storage."""
        local = self.local(rel)
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = local.with_name(f".{local.name}.{uuid.uuid4().hex[:8]}.tmp")
        tmp.write_text(text)
        tmp.replace(local)
        self.push(rel)
        return local

    @contextmanager
    def _lock(self) -> Iterator[None]:
        """Processes of one node pull into one mirror: one at a time, so none sees another's
        half-copied directory."""
        self.local_root.mkdir(parents=True, exist_ok=True)
        with open(self.local_root / ".pull.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


_LOCAL = pafs.LocalFileSystem()


def open_filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """(filesystem, root path) of a storage URI: pyarrow's own filesystems, else fsspec's."""
    try:
        return pafs.FileSystem.from_uri(uri)
    except ValueError:
        pass  # not a pyarrow scheme (ArrowInvalid): try fsspec
    except OSError as err:  # e.g. an S3 bucket that cannot be reached
        raise StorageError(f"run.runs_dir {masked(uri)}: {err}") from None
    try:
        from fsspec.core import url_to_fs
    except ImportError:
        raise StorageError(f"run.runs_dir {masked(uri)}: pyarrow does not know this scheme and fsspec is "
                           "not installed") from None
    try:
        fs, root = url_to_fs(uri)
    except (ImportError, ValueError) as err:
        raise StorageError(f"run.runs_dir {masked(uri)}: {err}") from None
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), root


def _join(root: str, rel: str) -> str:
    return posixpath.join(root, rel) if rel else root


def _sync(src_fs: pafs.FileSystem, src: str, dst_fs: pafs.FileSystem, dst: str,
          prune: bool = True) -> None:
    """Make `dst` a copy of `src` (file or directory tree); with `prune` an exact one (a missing
    `src` removes `dst`, files only `dst` has go). A directory whose manifest is identical on
    both sides is skipped; manifests are copied last."""
    info = src_fs.get_file_info(src)
    if info.type == pafs.FileType.NotFound:
        if prune:
            _delete(dst_fs, dst)
        return
    if info.type == pafs.FileType.File:
        _copy_file(src_fs, src, dst_fs, dst)
        return
    if _same_manifest(src_fs, src, dst_fs, dst):
        return
    dst_entries = {posixpath.basename(i.path): i for i in _listing(dst_fs, dst)}
    if MANIFEST in dst_entries:  # a stale manifest must not vouch for half-copied files
        dst_fs.delete_file(_join(dst, MANIFEST))
    src_entries = sorted(_listing(src_fs, src), key=lambda i: posixpath.basename(i.path) == MANIFEST)
    for entry in src_entries:
        name = posixpath.basename(entry.path)
        dst_entries.pop(name, None)
        if entry.type == pafs.FileType.Directory:
            _sync(src_fs, entry.path, dst_fs, _join(dst, name), prune)
        else:
            _copy_file(src_fs, entry.path, dst_fs, _join(dst, name))
    for name in dst_entries if prune else ():  # gone from the source: pruned checkpoints etc.
        _delete(dst_fs, _join(dst, name))
    if not src_entries:
        dst_fs.create_dir(dst)


def _listing(fs: pafs.FileSystem, path: str) -> list[pafs.FileInfo]:
    info = fs.get_file_info(path)
    if info.type != pafs.FileType.Directory:
        return []
    entries = fs.get_file_info(pafs.FileSelector(path, recursive=False))
    return [e for e in entries if not posixpath.basename(e.path).endswith(".tmp")]


def _same_manifest(src_fs, src: str, dst_fs, dst: str) -> bool:
    src_m, dst_m = _read(src_fs, _join(src, MANIFEST)), _read(dst_fs, _join(dst, MANIFEST))
    return src_m is not None and src_m == dst_m


def _read(fs: pafs.FileSystem, path: str) -> bytes | None:
    if fs.get_file_info(path).type != pafs.FileType.File:
        return None
    with fs.open_input_stream(path) as f:
        return f.read()


def _copy_file(src_fs, src: str, dst_fs, dst: str) -> None:
    """One file; on a local disk through a temporary name, so a reader never sees half of it
    (object stores write an object atomically)."""
    local = isinstance(dst_fs, pafs.LocalFileSystem)
    target = f"{dst}.{uuid.uuid4().hex[:8]}.tmp" if local else dst
    parent = posixpath.dirname(dst)
    if parent:
        dst_fs.create_dir(parent, recursive=True)
    pafs.copy_files(src, target, source_filesystem=src_fs, destination_filesystem=dst_fs)
    if local:
        os.replace(target, dst)


def _delete(fs: pafs.FileSystem, path: str) -> None:
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.Directory:
        fs.delete_dir(path)
    elif info.type == pafs.FileType.File:
        fs.delete_file(path)


def _replace_dir(src: Path, dst: Path) -> None:
    """Rename `src` over `dst` on one disk; the old `dst` is removed only after the swap."""
    old = dst.with_name(f".{dst.name}.replaced")
    _remove_local(old)
    if dst.exists():
        dst.rename(old)
    dst.parent.mkdir(parents=True, exist_ok=True)
    src.rename(dst)
    _remove_local(old)


def _remove_local(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()
