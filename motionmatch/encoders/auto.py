"""Choosing an encoder by name, with the documented fallback to the weight-free FlowEncoder."""
from __future__ import annotations

import logging

from ..errors import ParameterError, WeightsUnavailableError

log = logging.getLogger(__name__)

ENCODER_CHOICES = ("auto", "vjepa2", "vjepa2-tiny", "flow", "clip", "clip-tiny")


def choose_encoder(name: str = "auto", model_id: str | None = None, device: str | None = None,
                   precision: str | None = None) -> tuple[object, str]:
    """Build the encoder the user asked for; return it with a one-line note for reports.

    ``auto`` tries the real V-JEPA 2 checkpoint and, when its weights cannot be loaded
    (offline, no local copy), falls back to :class:`FlowEncoder` and says so. Any other
    name is strict: a failure is raised, never silently replaced.
    """
    from . import build_encoder

    if name not in ENCODER_CHOICES:
        raise ParameterError(f"unknown encoder {name!r}; choose one of {', '.join(ENCODER_CHOICES)}")
    kwargs = {}
    if device:
        kwargs["device"] = device
    if precision:
        kwargs["precision"] = precision
    if name == "auto":
        try:
            encoder = build_encoder("vjepa2", **({"model_id": model_id} if model_id else {}), **kwargs)
            return encoder, f"V-JEPA 2 ({encoder.encoder_id}) with real pre-trained weights."
        except WeightsUnavailableError as err:
            log.warning("V-JEPA 2 weights unavailable, using FlowEncoder: %s", err)
            encoder = build_encoder("flow")
            return encoder, ("FlowEncoder (weight-free optical-flow histograms), NOT V-JEPA 2: the V-JEPA 2 "
                             f"weights could not be loaded here ({str(err).splitlines()[0]}).")
    if name in ("vjepa2", "clip") and model_id:
        kwargs["model_id"] = model_id
    if name in ("flow", "vjepa2-tiny", "clip-tiny"):
        kwargs = {}
    encoder = build_encoder(name, **kwargs)
    return encoder, describe_encoder(encoder.encoder_id)


def describe_encoder(encoder_id: str) -> str:
    """Plain words for an encoder id, used in the first lines of every report."""
    if encoder_id.startswith("flow:"):
        return f"FlowEncoder ({encoder_id}): weight-free optical-flow histograms, NOT V-JEPA 2."
    if encoder_id.startswith("vjepa2:tiny"):
        return f"A tiny randomly initialised V-JEPA 2 ({encoder_id}) for tests: its numbers mean nothing about V-JEPA 2."
    if encoder_id.startswith("vjepa2:"):
        return f"V-JEPA 2 ({encoder_id}) with pre-trained weights."
    if encoder_id.startswith("clip:tiny"):
        return f"A tiny randomly initialised CLIP vision model ({encoder_id}) for tests."
    if encoder_id.startswith("clip:"):
        return f"CLIP image encoder, frame-pooled ({encoder_id})."
    return encoder_id


def encoder_from_id(encoder_id: str):
    """Rebuild the encoder that made an index or table, so queries are embedded the same way."""
    from . import build_encoder

    kind, _, rest = encoder_id.partition(":")
    if kind == "flow":
        return build_encoder("flow")
    if kind == "vjepa2" and rest.startswith("tiny-seed"):
        return build_encoder("vjepa2-tiny", seed=int(rest.removeprefix("tiny-seed")))
    if kind == "vjepa2":
        return build_encoder("vjepa2", model_id=rest)
    if kind == "clip" and rest.startswith("tiny-seed"):
        return build_encoder("clip-tiny", seed=int(rest.removeprefix("tiny-seed")))
    if kind == "clip":
        return build_encoder("clip", model_id=rest)
    raise ParameterError(f"cannot rebuild encoder {encoder_id!r}: unknown kind {kind!r}")
