"""User text sources from `data.text_files`: files, folders and globs of .txt, .md and .jsonl."""
from __future__ import annotations

import glob
import json
from pathlib import Path

from forge.data.errors import DataError

TEXT_SUFFIXES = (".txt", ".md", ".jsonl")


def expand_paths(entries: tuple[str, ...], key: str = "data.text_files") -> list[Path]:
    """Resolve each entry (a file, a folder searched recursively, or a glob) to sorted files.

    An entry that names nothing raises `DataError` naming `key[i]` and the entry.
    """
    out: list[Path] = []
    for i, entry in enumerate(entries):
        path = Path(entry).expanduser()
        if glob.has_magic(entry):
            found = [Path(p) for p in sorted(glob.glob(str(path), recursive=True))]
            found = [p for p in found if p.is_file() and p.suffix in TEXT_SUFFIXES]
        elif path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in TEXT_SUFFIXES)
        elif path.is_file():
            if path.suffix not in TEXT_SUFFIXES:
                raise DataError(f"{key}[{i}]: {entry} is not one of {', '.join(TEXT_SUFFIXES)}")
            found = [path]
        else:
            raise DataError(f"{key}[{i}]: no such file or folder: {entry}")
        if not found:
            raise DataError(f"{key}[{i}]: no {'/'.join(TEXT_SUFFIXES)} files match {entry}")
        out.extend(found)
    return list(dict.fromkeys(out))


def read_jsonl(path: Path, field: str) -> list[str]:
    """The `field` string of every non-blank line; a bad line raises `DataError` with file:line."""
    docs = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}:{n}: not valid JSON ({err.msg})") from err
        if not isinstance(record, dict) or not isinstance(record.get(field), str):
            raise DataError(f"{path}:{n}: no string field {field!r} "
                            f"(set data.jsonl_text_field)")
        docs.append(record[field])
    return docs


def read_text_file(path: Path, jsonl_field: str) -> list[str]:
    """Documents of one file: a whole .txt/.md file is one document, a .jsonl line is one."""
    try:
        if path.suffix == ".jsonl":
            return read_jsonl(path, jsonl_field)
        return [path.read_text(encoding="utf-8")]
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from err


def user_documents(entries: tuple[str, ...], jsonl_field: str) -> list[str]:
    """All documents of the user's `data.text_files`, in the order the entries list them."""
    docs: list[str] = []
    for path in expand_paths(entries):
        docs.extend(read_text_file(path, jsonl_field))
    return docs
