"""Finding pretrained weights without hanging on a machine that is offline, and loading them strictly.

huggingface_hub and transformers are imported inside the functions that need them.
"""
from __future__ import annotations

import os
import re
import socket
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ..errors import ParameterError, WeightsUnavailableError

HUB_CONNECT_TIMEOUT_S = 3.0  # how long to wait for a TCP connection to the hub before calling it unreachable
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_TRUE_VALUES = {"1", "true", "yes", "on"}

def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE_VALUES


def hub_offline_requested() -> bool:
    """True when HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) asks for no network access."""
    return _env_true("HF_HUB_OFFLINE") or _env_true("TRANSFORMERS_OFFLINE")


def hub_endpoint() -> str:
    """The Hugging Face hub URL in use (HF_ENDPOINT or https://huggingface.co)."""
    return os.environ.get("HF_ENDPOINT", "").rstrip("/") or "https://huggingface.co"


def hub_is_reachable(timeout_s: float = HUB_CONNECT_TIMEOUT_S) -> bool:
    """Whether a TCP connection to the hub (or the HTTPS proxy in use) opens within ``timeout_s``.

    Name resolution runs in a daemon thread so a hanging DNS lookup cannot stall the caller.
    """
    target = urlparse(hub_endpoint())
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy") or os.environ.get("ALL_PROXY") \
        or os.environ.get("all_proxy")
    if proxy:
        target = urlparse(proxy if "://" in proxy else f"http://{proxy}")
    host = target.hostname or "huggingface.co"
    port = target.port or (443 if target.scheme == "https" else 80)
    outcome: list[bool] = []

    def connect() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout_s):
                outcome.append(True)
        except OSError:
            outcome.append(False)

    worker = threading.Thread(target=connect, name="motionmatch-hub-probe", daemon=True)
    worker.start()
    worker.join(timeout_s + 0.5)
    return bool(outcome and outcome[0])


def _download_advice(model_id: str, what: str, fallback: str) -> str:
    folder = model_id.rstrip("/").split("/")[-1]
    return (f"To use {what}: (1) on a connected machine run `hf download {model_id} --local-dir {folder}` "
            f"(older huggingface_hub: `huggingface-cli download {model_id} --local-dir {folder}`), copy the folder "
            f"here and pass it with `--model /path/to/{folder}` (Python: model_id='/path/to/{folder}'); "
            f"(2) or populate the Hugging Face cache (HF_HOME) with it and set HF_HUB_OFFLINE=1; "
            f"(3) or {fallback}.")


def _cached_snapshot(repo_id: str) -> str | None:
    """The cache snapshot folder holding config.json and weights for ``repo_id``, or None (no network used)."""
    from huggingface_hub import try_to_load_from_cache

    config_path = try_to_load_from_cache(repo_id, "config.json")
    if not isinstance(config_path, str):
        return None
    snapshot = Path(config_path).parent
    if any((snapshot / name).exists() for name in WEIGHT_FILES):
        return str(snapshot)
    return None


def absolute_if_folder(model_id: str | os.PathLike) -> str:
    """An existing local folder as its absolute path (symlinks kept, ``~`` expanded); anything else unchanged.

    Encoder ids name their checkpoint; a relative folder would name another place once the working
    directory changes (the CLI runs at the project root, notebooks in ``notebooks/``).
    """
    text = str(model_id).strip()
    path = Path(text).expanduser()
    return str(path.absolute()) if text and path.is_dir() else text


def resolve_pretrained(model_id: str, what: str = "these weights",
                       fallback: str = "use `--encoder flow`, the weight-free motion descriptor") -> str:
    """A folder or hub id that ``from_pretrained`` can load now, or WeightsUnavailableError within seconds.

    Order: an existing local folder (must hold config.json); a complete copy in the local Hugging
    Face cache (returned as its snapshot folder, so loading needs no network); the hub id itself
    when the hub answers. When none applies (offline by HF_HUB_OFFLINE or by an unreachable hub)
    the error says how to get the weights onto this machine.
    """
    model_id = str(model_id).strip()
    if not model_id:
        raise WeightsUnavailableError(f"no model id or folder given for {what}; pass a hub id or a local folder")
    path = Path(model_id).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise WeightsUnavailableError(f"{path} is a folder but holds no config.json, so it is not a saved "
                                          f"transformers model; point to the folder made by `hf download` or "
                                          f"save_pretrained() for {what}")
        return str(path)
    looks_like_path = model_id.startswith((".", "/", "~")) or path.exists() or not _REPO_ID.match(model_id)
    if looks_like_path:
        raise WeightsUnavailableError(f"model folder {model_id!r} does not exist (and it is not a hub id like "
                                      f"'owner/name'). {_download_advice(model_id, what, fallback)}")
    snapshot = _cached_snapshot(model_id)
    if snapshot is not None:
        return snapshot
    if hub_offline_requested():
        reason = "HF_HUB_OFFLINE=1 is set"
    elif not hub_is_reachable():
        reason = f"the hub ({hub_endpoint()}) cannot be reached from this machine"
    else:
        return model_id  # not cached, but the hub answers: from_pretrained downloads it
    from huggingface_hub import constants

    raise WeightsUnavailableError(f"weights {model_id!r} for {what} are not in the local Hugging Face cache "
                                  f"({constants.HF_HUB_CACHE}) and {reason}. "
                                  f"{_download_advice(model_id, what, fallback)}")


def read_processor_config(resolved: str, section: str, filenames: Sequence[str]) -> dict | None:
    """The preprocessor values stored with a checkpoint, or None when it has none.

    Looks, like transformers' Auto*Processor, first in processor_config.json's nested ``section``
    ("video_processor" / "image_processor"), then in ``filenames`` in order. ``resolved`` is what
    :func:`resolve_pretrained` returned (a folder, or a hub id to look up in the local cache only).
    """
    import json

    def locate(name: str) -> Path | None:
        folder = Path(resolved)
        if folder.is_dir():
            candidate = folder / name
            return candidate if candidate.is_file() else None
        try:
            from huggingface_hub import hf_hub_download

            return Path(hf_hub_download(resolved, name))
        except Exception:  # noqa: BLE001 - absent file, offline, gated: the class defaults apply
            return None

    nested = locate("processor_config.json")
    if nested is not None:
        values = json.loads(nested.read_text(encoding="utf-8"))
        if isinstance(values.get(section), dict):
            return values[section]
    for name in filenames:
        found = locate(name)
        if found is not None:
            return json.loads(found.read_text(encoding="utf-8"))
    return None


def square_crop_size(value: Any, source: str) -> int:
    """A crop size from a processor config (int or {"height", "width"}) as one int; non-square is an error."""
    if isinstance(value, dict):
        height, width = value.get("height"), value.get("width", value.get("height"))
        if height is None or height != width:
            raise ParameterError(f"crop_size {value} in {source} is not square; MotionMatch supports square crops only")
        return int(height)
    return int(value)


def loading_failed(model_id: str, what: str, error: Exception, fallback: str) -> WeightsUnavailableError:
    """A WeightsUnavailableError for a from_pretrained call that failed after the weights were located."""
    if Path(model_id).expanduser().is_dir():
        return WeightsUnavailableError(
            f"the folder {model_id} exists but could not be loaded as {what}: {type(error).__name__}: "
            f"{str(error).strip()}. Point --model (or MOTIONMATCH_MODEL) at a complete checkpoint folder (config.json "
            f"and model.safetensors, as written by save_pretrained() or `hf download`), or {fallback}.")
    return WeightsUnavailableError(f"loading {what} from {model_id!r} failed: {type(error).__name__}: {error}. "
                                   f"{_download_advice(model_id, what, fallback)}")


def _stored_model_type(resolved: str) -> str | None:
    """``model_type`` in a local checkpoint folder's config.json (None for a hub id or an unreadable file)."""
    import json

    config_path = Path(resolved) / "config.json"
    try:
        return json.loads(config_path.read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None  # not a folder, or a broken file: from_pretrained reports it with its own words


def load_pretrained_model(model_class: type, model_id: str, resolved: str, *, model_types: Sequence[str],
                          required_prefix: str, what: str, fallback: str, **kwargs: Any) -> Any:
    """``model_class.from_pretrained(resolved)`` that refuses to run on weights it did not find.

    transformers loads a checkpoint of another model type, or one that lacks some weights, with a
    warning and fills the gaps with random values: the vectors would look normal and mean nothing.
    Here that is a WeightsUnavailableError naming the folder, as is every other loading failure
    (unreadable config.json, corrupt safetensors, size mismatch). ``required_prefix`` names the
    parameters that are actually used (e.g. ``"encoder."``); other missing weights are ignored.
    """
    stored_type = _stored_model_type(resolved)
    if stored_type is not None and stored_type not in model_types:
        raise WeightsUnavailableError(
            f"{model_id} holds a {stored_type!r} model (model_type in its config.json), not {what} "
            f"(model_type {' or '.join(map(repr, model_types))}); point --model (or MOTIONMATCH_MODEL) at a "
            f"checkpoint of {what}, or {fallback}.")
    from transformers.utils import logging as transformers_logging

    quiet = _env_true("TQDM_DISABLE") and transformers_logging.is_progress_bar_enabled()
    if quiet:  # reports set TQDM_DISABLE; transformers' own loading bar would otherwise open them
        transformers_logging.disable_progress_bar()
    try:
        model, info = model_class.from_pretrained(resolved, output_loading_info=True, **kwargs)
    except MemoryError:
        raise
    except Exception as err:  # noqa: BLE001 - OSError, JSON, SafetensorError, size mismatch: all say the same
        raise loading_failed(model_id, what, err, fallback) from err
    finally:
        if quiet:
            transformers_logging.enable_progress_bar()
    missing = sorted(key for key in info.get("missing_keys", ()) if key.startswith(required_prefix))
    if missing:
        raise WeightsUnavailableError(
            f"{model_id} lacks {len(missing)} weight(s) of {what} (e.g. {', '.join(missing[:3])}); transformers "
            "would fill them with random values, so the vectors would mean nothing. Re-create the folder with "
            f"save_pretrained() or `hf download`, or {fallback}.")
    return model


__all__ = ["absolute_if_folder", "resolve_pretrained", "load_pretrained_model", "read_processor_config",
           "hub_is_reachable", "hub_offline_requested", "square_crop_size", "loading_failed"]
