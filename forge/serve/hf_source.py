"""Write the Cognate modeling code as ONE self-contained Python file, from forge's own sources.

An exported model (`forge export --format hf`) must load with `trust_remote_code=True` where
forge is not installed, and must compute what forge computes. A hand-kept copy of the model
would drift as `forge/models/*` changes, so the file is generated at export time:

1. start from `forge.models.modeling` and follow its `from forge.models.X import ...` lines
   (depth first, so every module comes after the modules it needs);
2. keep each module's code, drop its docstring, hoist its third-party imports to the top;
3. drop imports from the rest of forge (e.g. `forge.config`) together with every top-level
   definition that uses them (e.g. `cognate_config_from`, which builds a config from forge's
   YAML sections), repeating until nothing left refers to a dropped name;
4. append forge's activation quantiser and a small export layer (`EXPORT_GLUE`) that runs the
   unpacked weights of a BitNet model with the same 8-bit activations it was trained with.

A name defined twice (two modules with the same top-level name) is an error, not a silent
override. `tests/serve/test_export.py` loads the result in a process that cannot import forge
and checks the logits are equal.
"""
from __future__ import annotations

import ast
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

MODELS_PACKAGE = "forge.models"
ROOT_MODULE = "forge.models.modeling"
# Pulled in by name from the rest of forge: the activation quantiser of TernaryLinear.
EXTRA_DEFINITIONS = (("forge.quant.quantize", ("ACT_EPS", "quantize_activations")),)

EXPORT_GLUE = '''

class ActivationQuantLinear(nn.Linear):
    """A BitNet layer with its ternary weights unpacked: y = absmax_b(x) @ W^T + b, where W is
    already trits * scale. Same values as forge.quant.TernaryLinear loaded from a packed file."""

    def __init__(self, linear: nn.Linear, act_bits: int) -> None:
        super().__init__(linear.in_features, linear.out_features, linear.bias is not None,
                         device="meta")
        self.weight, self.bias, self.act_bits = linear.weight, linear.bias, act_bits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        codes, scale = quantize_activations(x, self.act_bits)  # (..., in), (..., 1)
        return F.linear(codes * scale, self.weight, self.bias)


class CognateForCausalLMExport(CognateForCausalLM):
    """CognateForCausalLM whose config may list `forge_activation_bits` {layer name: bits}:
    those Linear layers quantise their input as the exported BitNet model did."""

    def __init__(self, config: CognateConfig) -> None:
        super().__init__(config)
        for name, bits in (getattr(config, "forge_activation_bits", None) or {}).items():
            parent, _, child = name.rpartition(".")
            owner = self.get_submodule(parent)
            setattr(owner, child, ActivationQuantLinear(getattr(owner, child), int(bits)))
'''


class SourceError(ValueError):
    """forge's model sources cannot be made into one self-contained file."""


@dataclass
class _Module:
    name: str
    imports: list[str] = field(default_factory=list)  # third-party import lines
    body: list[ast.stmt] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # the module's source, for `_text`
    dropped: set[str] = field(default_factory=set)  # names imported from the rest of forge
    aliases: list[str] = field(default_factory=list)  # `b = a` for `from forge.models.x import a as b`


def _source_file(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise SourceError(f"{module}: not found")
    return Path(spec.origin)


def _parse(module: str, order: list[_Module], seen: set[str]) -> None:
    """Depth-first: the forge.models modules `module` imports, then `module` itself."""
    seen.add(module)
    text = _source_file(module).read_text()
    tree = ast.parse(text)
    out = _Module(module, lines=text.splitlines())
    for i, node in enumerate(tree.body):
        if i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # the module docstring
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            continue
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("forge"):
            if node.module.startswith(MODELS_PACKAGE + "."):
                if node.module not in seen:
                    _parse(node.module, order, seen)
                out.aliases += [f"{a.asname} = {a.name}" for a in node.names
                                if a.asname and a.asname != a.name]
            else:
                out.dropped |= {a.asname or a.name for a in node.names}
            continue
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "forge" for a in node.names):
            raise SourceError(f"{module}: `{ast.unparse(node)}` is not supported; use "
                              "`from forge.models.x import name`")
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out.imports.append(ast.unparse(node))
        else:
            out.body.append(node)
    order.append(out)


def _text(node: ast.stmt, lines: list[str]) -> str:
    """The statement's own source lines (decorators and comments inside it kept)."""
    start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    return "\n".join(lines[start - 1:node.end_lineno])


def _defined(node: ast.stmt) -> set[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    targets = node.targets if isinstance(node, ast.Assign) else (
        [node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign)) else [])
    return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}


def _uses(node: ast.stmt) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _prune(body: list[ast.stmt], dropped: set[str]) -> list[ast.stmt]:
    """Remove every statement that uses a dropped name, and then what used those, to a fixpoint."""
    dropped = set(dropped)
    while True:
        keep = [n for n in body if not (_uses(n) & dropped)]
        gone = {name for n in body if n not in keep for name in _defined(n)}
        if len(keep) == len(body):
            return keep
        body, dropped = keep, dropped | gone


def _extra_definitions() -> list[_Module]:
    """The named top-level definitions (and their imports) of EXTRA_DEFINITIONS' modules."""
    out = []
    for module, names in EXTRA_DEFINITIONS:
        text = _source_file(module).read_text()
        tree = ast.parse(text)
        found = [n for n in tree.body if _defined(n) & set(names)]
        missing = set(names) - {name for n in found for name in _defined(n)}
        if missing:
            raise SourceError(f"{module}: defines no {sorted(missing)}")
        imports = [ast.unparse(n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))
                   and getattr(n, "module", None) != "__future__"]
        out.append(_Module(module, imports, found, text.splitlines()))
    return out


def modeling_source() -> str:
    """The text of `modeling_cognate.py`: config, model and export layer in one importable file."""
    order: list[_Module] = []
    _parse(ROOT_MODULE, order, set())
    dropped = set().union(*(m.dropped for m in order))
    order += _extra_definitions()
    lines_of = {id(n): m.lines for m in order for n in m.body}
    body = _prune([n for m in order for n in m.body], dropped)
    names: dict[str, int] = {}
    for node in body:
        for name in _defined(node) if not isinstance(node, ast.AugAssign) else ():
            names[name] = names.get(name, 0) + 1
    twice = sorted(n for n, k in names.items() if k > 1)
    if twice:
        raise SourceError(f"forge.models: top-level names defined in more than one module: {twice}")
    imports = list(dict.fromkeys(i for m in order for i in m.imports))
    header = ('"""Cognate (TRM x Titans MAG x ACT) for Hugging Face transformers, generated by '
              '`forge export` from\nthe sources of ' +
              ", ".join(m.name for m in order) +
              '.\nSelf-contained: needs torch and transformers only. Do not edit; re-export."""')
    parts = [header, "from __future__ import annotations", "\n".join(imports)]
    parts += [_text(n, lines_of[id(n)]) for n in body]
    parts += [line for m in order for line in m.aliases]
    text = "\n\n\n".join(parts) + "\n" + EXPORT_GLUE
    compile(text, "modeling_cognate.py", "exec")  # a syntax error here is ours, not the user's
    return text
