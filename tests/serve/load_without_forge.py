"""Run in a subprocess by the export tests: load an exported folder where forge cannot be imported.

    python load_without_forge.py IDS_JSON OUT...   -> prints one JSON line per OUT
"""
import importlib.abc
import json
import os
import sys


class NoForge(importlib.abc.MetaPathFinder):
    """Make `import forge` / `import actors` fail, as on a machine without agent-forge."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("forge", "actors", "tests"):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")
        return None


sys.meta_path.insert(0, NoForge())
# The checkout (this file's repo) must not be on the path; its venv's site-packages may be inside it.
ROOT = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path = [p for p in sys.path if os.path.realpath(p or os.getcwd()) != ROOT]

import torch  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast  # noqa: E402

ids = json.loads(sys.argv[1])
try:
    import forge  # noqa: F401
    raise SystemExit("forge is importable: the test would prove nothing")
except ModuleNotFoundError:
    pass
for out in sys.argv[2:]:
    model = AutoModelForCausalLM.from_pretrained(out, trust_remote_code=True).eval()
    tok = AutoTokenizer.from_pretrained(out, trust_remote_code=True)
    with torch.no_grad():
        logits = model(torch.tensor(ids)).logits
        gen = model.generate(torch.tensor(ids[:1]), max_new_tokens=4, do_sample=False)
        # 20 tokens cross the test model's memory chunks (4) and attention window (6)
        long = {c: model.generate(torch.tensor(ids[:1]), max_new_tokens=20, do_sample=False,
                                  use_cache=c)[0, len(ids[0]):].tolist() for c in (True, False)}
    print(json.dumps({"logits": logits.tolist(), "generated": gen[0, len(ids[0]):].tolist(),
                      "long_cached": long[True], "long_uncached": long[False],
                      "encoded": tok("hello world", add_special_tokens=False).input_ids,
                      "model_class": type(model).__name__, "fast_tokenizer": isinstance(tok, PreTrainedTokenizerFast),
                      "forge_modules": sorted(m for m in sys.modules if m.split(".")[0] == "forge")}))
