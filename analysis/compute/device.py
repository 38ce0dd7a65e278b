"""Which device a model runs on (CUDA when present, else the CPU), and how many CPU threads it may use."""

from __future__ import annotations

import os


def pick_device(requested: str = "auto") -> str:
    """``"auto"`` → ``"cuda"`` if torch sees a GPU, else ``"cpu"``; anything else is checked and returned."""
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {requested!r} was requested but torch sees no CUDA GPU; use 'auto' or 'cpu'")
    return requested


def cpu_threads() -> int:
    """Torch threads for CPU work: ``$SYNTHSCOPE_THREADS``, else half the cores (at least one).

    Torch's default, one thread per core, collapses on a small machine that is doing
    anything else: training the demo's tiny model for 80 steps on 2 cores beside other
    work took 63 s and 35 s with one thread, 250 s and 182 s with two (alternating runs,
    same load). Half the cores leaves the rest to the dashboard, the user and the OS.
    """
    configured = os.environ.get("SYNTHSCOPE_THREADS", "")
    if configured.isdigit() and int(configured) > 0:
        return int(configured)
    return max(1, (os.cpu_count() or 2) // 2)


def limit_cpu_threads() -> None:
    """Set torch's intra-op threads to :func:`cpu_threads` (once per process; later calls change nothing else)."""
    import torch

    torch.set_num_threads(cpu_threads())
