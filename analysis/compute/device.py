"""Which device a model runs on: CUDA when present, else the CPU, unless the user says otherwise."""

from __future__ import annotations


def pick_device(requested: str = "auto") -> str:
    """``"auto"`` → ``"cuda"`` if torch sees a GPU, else ``"cpu"``; anything else is checked and returned."""
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {requested!r} was requested but torch sees no CUDA GPU; use 'auto' or 'cpu'")
    return requested
