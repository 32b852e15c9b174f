"""Built-in text sources that every Python install has: stdlib docstrings and pydoc topics.

Each source returns a list of raw document strings in a fixed order, so the corpus is the same on
every run of the same Python version.
"""
from __future__ import annotations

import ast
import gzip
import importlib
import inspect
import warnings
from pathlib import Path

# A fixed list so the corpus does not depend on what else happens to be imported.
STDLIB_MODULES: tuple[str, ...] = (
    "abc", "argparse", "array", "ast", "asyncio", "base64", "bisect", "calendar", "cmd",
    "codecs", "collections", "concurrent.futures", "configparser", "contextlib", "copy", "csv",
    "dataclasses", "datetime", "decimal", "difflib", "dis", "email", "enum", "filecmp",
    "fnmatch", "fractions", "ftplib", "functools", "getopt", "gettext", "glob", "gzip",
    "hashlib", "heapq", "hmac", "html", "http.client", "http.server", "imaplib", "inspect",
    "io", "ipaddress", "itertools", "json", "logging", "mailbox", "math", "mimetypes",
    "multiprocessing", "numbers", "operator", "optparse", "os", "pathlib", "pickle",
    "pkgutil", "platform", "pprint", "queue", "random", "re", "sched", "secrets", "selectors",
    "shelve", "shlex", "shutil", "smtplib", "socket", "sqlite3", "ssl", "statistics",
    "string", "struct", "subprocess", "tarfile", "tempfile", "textwrap", "threading",
    "timeit", "tokenize", "traceback", "types", "typing", "unittest", "urllib.parse",
    "urllib.request", "uuid", "warnings", "wave", "weakref", "xml.dom.minidom",
    "xml.etree.ElementTree", "zipfile", "zoneinfo",
)

SYSTEM_DOC_GLOB = "/usr/share/doc/python3*"


def _own_members(module: object) -> list[object]:
    """Classes and functions defined in `module` itself, sorted by name."""
    name = getattr(module, "__name__", "")
    members = []
    for _, value in sorted(vars(module).items()):
        if (inspect.isclass(value) or inspect.isfunction(value)) and \
                getattr(value, "__module__", None) == name:
            members.append(value)
    return members


def _class_methods(cls: type) -> list[object]:
    """Functions defined in the body of `cls`, sorted by name."""
    return [v for _, v in sorted(vars(cls).items()) if inspect.isfunction(v)]


DEFS = (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def _top_level_defs(body: list[ast.stmt]) -> list[ast.AST]:
    """Class and function definitions of a module body, including those inside module-level
    if/try/with blocks (e.g. platform-specific definitions), in source order."""
    out: list[ast.AST] = []
    for node in body:
        if isinstance(node, DEFS):
            out.append(node)
        else:
            for field in ("body", "orelse", "finalbody", "handlers"):
                out += _top_level_defs(getattr(node, field, []) or [])
    return out


def _source_docstrings(source: str) -> list[str]:
    """Docstrings of a module's source: the module, then its top-level classes and functions
    sorted by name, each class followed by its methods sorted by name (first definition wins)."""
    tree = ast.parse(source)
    docs = [ast.get_docstring(tree)]
    top: dict[str, ast.AST] = {}
    for node in _top_level_defs(tree.body):
        top.setdefault(node.name, node)
    for _, node in sorted(top.items()):
        docs.append(ast.get_docstring(node))
        if isinstance(node, ast.ClassDef):
            methods: dict[str, ast.AST] = {}
            for item in node.body:
                if isinstance(item, DEFS[1:]):
                    methods.setdefault(item.name, item)
            docs += [ast.get_docstring(m) for _, m in sorted(methods.items())]
    return [d for d in docs if d]


def module_docstrings(name: str) -> list[str]:
    """Docstrings of module `name`, its classes, functions and methods, in a fixed order.

    Read from the module's source file when it has one: the live module can differ between
    processes (importing ray, for one, replaces a few functions of `inspect`, `logging` and
    `typing`), and the corpus must not depend on what else a process imported."""
    module = importlib.import_module(name)
    try:
        return _source_docstrings(inspect.getsource(module))
    except (OSError, TypeError):  # a C module: no source, and nothing patches its members
        pass
    objects: list[object] = [module]
    for member in _own_members(module):
        objects.append(member)
        if inspect.isclass(member):
            objects.extend(_class_methods(member))
    with warnings.catch_warnings():  # typing.io / typing.re warn on access; their text is fine
        warnings.simplefilter("ignore", DeprecationWarning)
        docs = [getattr(o, "__doc__", None) for o in objects]
    return [inspect.cleandoc(d) for d in docs if isinstance(d, str) and d]


def stdlib_docstrings(modules: tuple[str, ...] = STDLIB_MODULES) -> list[str]:
    """Docstrings of the fixed stdlib module list; a module missing from this install is skipped."""
    out: list[str] = []
    for name in modules:
        try:
            out.extend(module_docstrings(name))
        except ImportError:  # e.g. a Python built without sqlite3 or ssl: that module has no text
            continue
    return out


def pydoc_topics() -> list[str]:
    """The language reference topics shipped for `help()` in `pydoc_data.topics`, by topic name."""
    from pydoc_data.topics import topics

    return [topics[k] for k in sorted(topics)]


def _read_doc_file(path: Path) -> str:
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return data.decode("utf-8", errors="replace")


def system_docs(pattern: str = SYSTEM_DOC_GLOB) -> list[str]:
    """Plain-text files (README*, *.txt, *.txt.gz) under Debian's python3 doc folders, if any."""
    out = []
    for folder in sorted(Path("/").glob(pattern.lstrip("/"))):
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            if path.name.startswith("README") or path.name.endswith((".txt", ".txt.gz")):
                out.append(_read_doc_file(path))
    return out
