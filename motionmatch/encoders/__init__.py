"""Clip encoders: V-JEPA 2 (the motion model), FlowEncoder (weight-free), CLIP (appearance baseline), and
PoseEncoder (BlazePose's 3D skeleton: the same human movement from another camera; needs a person in view).

Importing this package is cheap: torch, transformers, OpenCV and LiteRT load when an encoder is built
(``BlazePose``, ``PoseFrame``, ``fetch_pose_models`` and ``pose_model_paths`` load with their module too).
"""
from __future__ import annotations

from typing import Any

from ..errors import ParameterError
from .base import Encoder, l2_normalize
from .caching import MemoEncoder

ENCODER_NAMES = ("vjepa2", "vjepa2-tiny", "flow", "clip", "clip-tiny", "pose")


def build_encoder(name: str, **kwargs: Any) -> Encoder:
    """Build an encoder by name.

    - ``"vjepa2"``: ``VJEPA2Encoder.from_pretrained(model_id=setting("model_id"), device=, precision=,
      attn_implementation=, frames_per_clip=, compile=)``; WeightsUnavailableError when offline without weights.
    - ``"vjepa2-tiny"``: ``VJEPA2Encoder.tiny(seed=0, **settings)``, random weights, for tests.
    - ``"flow"``: ``FlowEncoder(FlowSettings(**kwargs))``, weight-free optical-flow histograms.
    - ``"clip"`` / ``"clip-tiny"``: the CLIP image encoder, frame-pooled (real / tiny random weights).
    - ``"pose"``: ``PoseEncoder(PoseSettings(**kwargs), model_paths=, fetch=)``, BlazePose's canonical 3D skeleton
      (MediaPipe's models, fetched once from the mediapipe wheel); WeightsUnavailableError when they cannot be.
    """
    if name == "vjepa2":
        from .vjepa2 import VJEPA2Encoder

        model_id = _setting("model_id", kwargs.pop("model_id", None))
        return VJEPA2Encoder.from_pretrained(model_id, **kwargs)
    if name == "vjepa2-tiny":
        from .vjepa2 import VJEPA2Encoder

        return VJEPA2Encoder.tiny(**kwargs)
    if name == "flow":
        from .flow import FlowEncoder, FlowSettings

        return FlowEncoder(_make_settings(FlowSettings, kwargs, "flow"))
    if name == "clip":
        from .clip import CLIPVisualEncoder

        model_id = _setting("clip_model_id", kwargs.pop("model_id", None))
        return CLIPVisualEncoder.from_pretrained(model_id, **kwargs)
    if name == "clip-tiny":
        from .clip import CLIPVisualEncoder

        return CLIPVisualEncoder.tiny(**kwargs)
    if name == "pose":
        from .pose import PoseEncoder, PoseSettings

        model_paths, fetch = kwargs.pop("model_paths", None), kwargs.pop("fetch", True)
        return PoseEncoder(_make_settings(PoseSettings, kwargs, "pose"), model_paths=model_paths, fetch=fetch)
    raise ParameterError(f"unknown encoder {name!r}; valid names: {', '.join(ENCODER_NAMES)}")


def _setting(name: str, value: str | None) -> str:
    """``value``, else the environment variable, else the default: read now, not at import."""
    from ..config import setting

    return setting(name, value)


def _make_settings(settings_class: type, kwargs: dict[str, Any], encoder_name: str) -> Any:
    import dataclasses

    names = [field.name for field in dataclasses.fields(settings_class)]
    unknown = sorted(set(kwargs) - set(names))
    if unknown:
        raise ParameterError(f"unknown setting(s) {unknown} for encoder {encoder_name!r}; valid: {names}")
    return settings_class(**kwargs)


def __getattr__(attribute: str) -> Any:
    """Lazy access to the encoder classes (``from motionmatch.encoders import VJEPA2Encoder``) and to the choice."""
    lazy = {"VJEPA2Encoder": "vjepa2", "VJEPA2Settings": "vjepa2", "FlowEncoder": "flow", "FlowSettings": "flow",
            "CLIPVisualEncoder": "clip", "CLIPSettings": "clip", "PoseEncoder": "pose", "PoseSettings": "pose",
            "BlazePose": "blazepose", "PoseFrame": "blazepose", "fetch_pose_models": "pose_models",
            "pose_model_paths": "pose_models", "pose_models_dir": "pose_models", "POSE_MODELS": "pose_models",
            # auto builds encoders with build_encoder below, so it is loaded when first asked for
            "choose_encoder": "auto", "describe_encoder": "auto", "encoder_from_id": "auto", "ENCODER_CHOICES": "auto"}
    if attribute in lazy:
        import importlib

        return getattr(importlib.import_module(f".{lazy[attribute]}", __name__), attribute)
    raise AttributeError(f"module {__name__!r} has no attribute {attribute!r}")


__all__ = ["Encoder", "ENCODER_NAMES", "build_encoder", "choose_encoder", "describe_encoder", "encoder_from_id",
           "ENCODER_CHOICES", "MemoEncoder", "l2_normalize", "VJEPA2Encoder", "VJEPA2Settings",
           "FlowEncoder", "FlowSettings", "CLIPVisualEncoder", "CLIPSettings", "PoseEncoder", "PoseSettings",
           "BlazePose", "PoseFrame", "fetch_pose_models", "pose_model_paths", "pose_models_dir", "POSE_MODELS"]
