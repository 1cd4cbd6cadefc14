"""Where models run and in which precision: the one place these choices are made."""
from __future__ import annotations

import torch

from .errors import ParameterError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_PRECISION_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def pick_device(prefer: str | torch.device | None = None) -> torch.device:
    """The torch device to run on: CUDA when available, else CPU.

    ``prefer`` forces a choice: ``None``/``"auto"`` picks, ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or
    ``"mps"`` are used as given. Asking for an accelerator that is absent is an error, never a
    silent fallback to a much slower CPU run.
    """
    if isinstance(prefer, torch.device):
        prefer = str(prefer)
    choice = (prefer or "auto").strip().lower()
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cpu":
        return torch.device("cpu")
    if choice == "cuda" or choice.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ParameterError(f"device={prefer!r} was asked for but CUDA is not available here "
                                 f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'}); "
                                 "use --device cpu, or install a CUDA build of torch on a machine with a GPU")
        device = torch.device(choice)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ParameterError(f"device={prefer!r}: only {torch.cuda.device_count()} CUDA device(s) are visible "
                                 f"(indices 0..{torch.cuda.device_count() - 1})")
        return device
    if choice == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ParameterError(f"device={prefer!r} was asked for but Apple MPS is not available; use --device cpu")
        return torch.device("mps")
    raise ParameterError(f"unknown device {prefer!r}; use one of auto, cpu, cuda, cuda:N, mps")


def dtype_for(precision: str, device: torch.device | str) -> torch.dtype:
    """The torch dtype for a precision string ("auto", "fp32", "bf16", "fp16") on ``device``.

    ``"auto"`` is bf16 on CUDA (fp16 on GPUs without bf16 support) and fp32 elsewhere: bf16 halves
    memory and roughly doubles ViT throughput on recent GPUs, while CPUs gain little from it.
    """
    device = torch.device(device)
    choice = (precision or "auto").strip().lower()
    if choice == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if choice not in _PRECISION_DTYPES:
        raise ParameterError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    return _PRECISION_DTYPES[choice]


__all__ = ["PRECISIONS", "pick_device", "dtype_for"]
