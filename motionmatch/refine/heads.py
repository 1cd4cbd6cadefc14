"""A small projection head trained on cached embeddings with pytorch-metric-learning.

Why? The frozen encoder's space mixes motion with nuisance factors (scene, lighting,
domain) that often carry more variance than the motion itself. A linear (or small MLP)
head trained with a triplet or NT-Xent loss on labelled clips learns which directions
matter for "same motion". Training and validation are split by `group` (source video /
performer), so near-duplicate clips never sit on both sides and the validation score
measures generalisation to unseen groups.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sys
import types

import numpy as np
import pandas as pd
import torch


def _block_faiss_torch_patch() -> None:
    """Keep pytorch-metric-learning from monkey-patching faiss.

    PML's ``utils.inference`` (pulled in by its miners and samplers) imports
    ``faiss.contrib.torch_utils``, which replaces ``faiss.Index.search`` with a wrapper that
    rejects the ``params=`` keyword. Milvus Lite (same process, same faiss) passes exactly
    that keyword for HNSW and IVF searches, so every indexed search would fail after a head
    was trained. MotionMatch never uses PML's faiss inference, so the patch module is
    replaced by an empty one before PML is imported.
    """
    name = "faiss.contrib.torch_utils"
    if name not in sys.modules:
        sys.modules[name] = types.ModuleType(name, "not loaded: see motionmatch.refine.heads")


_block_faiss_torch_patch()
from pytorch_metric_learning import losses, miners, samplers  # noqa: E402
from sklearn.model_selection import GroupShuffleSplit
from torch import nn
from tqdm.auto import tqdm

from .calibrate import META_KEY, array_to_json, json_to_array
from ..errors import EncoderMismatchError, ParameterError
from ..metrics.ranking import average_precision_at_k, precision_at_k, rank_relevance
from ..table import effective_groups, embedding_matrix, table_encoder_id
from ..validation import check_choice, check_scalar

LOSSES = ("triplet", "ntxent")
TRIPLET_MINERS = ("semihard", "hard", "all", "batch-hard")


def pick_torch_device(preference: str = "auto") -> torch.device:
    """"auto" -> motionmatch.devices.pick_device() (CUDA when present); otherwise the named torch device."""
    from ..devices import pick_device

    return torch.device(preference) if preference != "auto" else pick_device()


class ProjectionHead(nn.Module):
    """Linear(in_dim, out_dim), or Linear-ReLU-Linear when hidden_dim is set; output L2-normalised.

    `input_mean` (a buffer, zeros unless set) is subtracted first: centring the anisotropic
    input removes the shared component every clip carries, which the head would otherwise
    have to learn to cancel through its bias.
    """

    def __init__(self, in_dim: int, out_dim: int | None = None, hidden_dim: int | None = None):
        super().__init__()
        out_dim = out_dim or min(512, in_dim)
        self.in_dim, self.out_dim, self.hidden_dim = int(in_dim), int(out_dim), hidden_dim
        if hidden_dim:
            self.layers = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, out_dim))
        else:
            self.layers = nn.Sequential(nn.Linear(in_dim, out_dim))
        self.register_buffer("input_mean", torch.zeros(in_dim))

    def forward(self, vectors: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.layers(vectors - self.input_mean), dim=-1)


@dataclass(frozen=True)
class HeadTrainingConfig:
    """How to train a projection head."""

    loss: str = "triplet"  # "triplet" (TripletMarginLoss + miner) or "ntxent" (NTXentLoss; same-label pairs are positives)
    margin: float = 0.2  # triplet margin, on the distance between L2-normalised outputs
    temperature: float = 0.07  # NT-Xent temperature
    triplet_miner: str = "semihard"  # "semihard" | "hard" | "all" (TripletMarginMiner) or "batch-hard" (BatchHardMiner)
    out_dim: int | None = None  # output dimension; None -> 512, or in_dim when that is smaller
    hidden_dim: int | None = None  # None -> one Linear layer; an int -> Linear-ReLU-Linear with this width
    center_inputs: bool = True  # subtract the training-set mean before the head (see ProjectionHead)
    lr: float = 1e-3  # AdamW learning rate
    weight_decay: float = 1e-4  # AdamW weight decay
    batch_size: int = 64  # clips per batch (rounded down to a multiple of samples_per_class)
    samples_per_class: int = 4  # MPerClassSampler m: clips per label in every batch, so each batch has positives
    max_epochs: int = 50  # upper bound on passes over the training clips
    patience: int = 5  # stop after this many epochs without improving the monitored value (val mAP@10, else train loss)
    val_fraction: float = 0.2  # share of groups held out for validation (0 -> no validation, monitor train loss)
    seed: int = 0  # seeds torch, numpy (also the sampler's) and random
    device: str = "auto"  # "auto" (CUDA when present), "cpu", "cuda", "cuda:1", ...

    def __post_init__(self) -> None:
        check_choice(self.loss, "HeadTrainingConfig.loss", LOSSES)
        check_choice(self.triplet_miner, "HeadTrainingConfig.triplet_miner", TRIPLET_MINERS)
        check_scalar(self.val_fraction, "HeadTrainingConfig.val_fraction", float, min_value=0, max_value=1,
                     include_max=False)
        # at least 2 clips per label in every batch, so each batch holds positive pairs
        check_scalar(self.samples_per_class, "HeadTrainingConfig.samples_per_class", int, min_value=2)
        check_scalar(self.batch_size, "HeadTrainingConfig.batch_size", int, min_value=self.samples_per_class)
        check_scalar(self.max_epochs, "HeadTrainingConfig.max_epochs", int, min_value=1)
        check_scalar(self.patience, "HeadTrainingConfig.patience", int, min_value=1)
        for name in ("margin", "temperature", "lr"):
            check_scalar(getattr(self, name), f"HeadTrainingConfig.{name}", float, min_value=0, include_min=False)
        check_scalar(self.weight_decay, "HeadTrainingConfig.weight_decay", float, min_value=0)
        for name in ("out_dim", "hidden_dim"):
            if getattr(self, name) is not None:
                check_scalar(getattr(self, name), f"HeadTrainingConfig.{name}", int, min_value=1)


def build_loss(config: HeadTrainingConfig) -> tuple[nn.Module, nn.Module | None]:
    """(loss, miner or None) from pytorch-metric-learning for a training config."""
    if config.loss == "ntxent":
        return losses.NTXentLoss(temperature=config.temperature), None
    loss = losses.TripletMarginLoss(margin=config.margin)
    if config.triplet_miner == "batch-hard":
        return loss, miners.BatchHardMiner()
    return loss, miners.TripletMarginMiner(margin=config.margin, type_of_triplets=config.triplet_miner)


def seed_everything(seed: int) -> None:
    """Seed python, numpy's global generator (pytorch-metric-learning's samplers draw from it) and torch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def retrieval_metrics(vectors: np.ndarray, labels: np.ndarray, groups: np.ndarray | None = None,
                      k: int = 10) -> dict[str, float]:
    """Mean P@k and mAP@k of every vector as a query against all others (cosine): the validation check.

    Candidates from the query's own group (and the query itself) are excluded, so near-duplicates
    of the query cannot score. The ranking and the metrics are :mod:`motionmatch.metrics.ranking`'
    (``rank_relevance``, ``precision_at_k``, ``average_precision_at_k``), the functions every
    evaluation uses. k is capped at the fewest candidates any query has; queries without any
    relevant candidate are left out of mAP@k. Keys: ``P@k``, ``mAP@k``.
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    labels = np.asarray(labels)
    groups = np.arange(len(labels)) if groups is None else np.asarray(groups)
    excluded = groups[:, None] == groups[None, :]
    np.fill_diagonal(excluded, True)
    cut = min(k, int((~excluded).sum(axis=1).min()))
    if cut < 1:
        raise ParameterError("retrieval_metrics needs at least 2 groups so each query has candidates")
    ranked, n_relevant = rank_relevance(vectors @ vectors.T, labels[:, None] == labels[None, :], excluded)
    average_precisions = average_precision_at_k(ranked, n_relevant, cut)
    map_at_k = float(np.nanmean(average_precisions)) if np.isfinite(average_precisions).any() else 0.0
    return {f"P@{k}": float(precision_at_k(ranked, cut).mean()), f"mAP@{k}": map_at_k}


@dataclass
class TrainedHead:
    """A trained projection head bound to the encoder whose embeddings it was trained on."""

    head: ProjectionHead
    encoder_id: str  # encoder of the input embeddings
    config: HeadTrainingConfig
    history: list[dict[str, float]] = field(default_factory=list)  # per epoch: epoch, train_loss, val P@10, val mAP@10
    best_epoch: int = -1  # epoch whose weights were kept (-1: loaded without history)
    label_column: str = "label"

    @property
    def in_dim(self) -> int:
        return self.head.in_dim

    @property
    def out_dim(self) -> int:
        return self.head.out_dim

    @property
    def output_encoder_id(self) -> str:
        """encoder_id to record for projected vectors: the source encoder plus a digest of the head's weights."""
        digest = hashlib.sha1()
        for name, tensor in sorted(self.head.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().numpy().tobytes())
        return f"{self.encoder_id}+head:{self.config.loss}{self.out_dim}:{digest.hexdigest()[:8]}"

    def project(self, vectors: np.ndarray, encoder_id: str | None = None, batch_size: int = 4096) -> np.ndarray:
        """Project (n, in_dim) embeddings to (n, out_dim) float32, L2-normalised."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if encoder_id is not None and encoder_id != self.encoder_id:
            raise EncoderMismatchError(f"this projection head belongs to encoder {self.encoder_id!r} but the vectors come "
                                       f"from {encoder_id!r}; train a head on that encoder's embeddings")
        if vectors.ndim != 2 or vectors.shape[1] != self.in_dim:
            raise EncoderMismatchError(f"this projection head belongs to encoder {self.encoder_id!r} ({self.in_dim}-d input) "
                                       f"but was given vectors of shape {vectors.shape}; embed with that encoder "
                                       "or train a head on yours")
        device = next(self.head.parameters()).device
        self.head.eval()
        outputs = []
        with torch.inference_mode():
            for start in range(0, len(vectors), batch_size):
                batch = torch.from_numpy(vectors[start:start + batch_size]).to(device)
                outputs.append(self.head(batch).float().cpu().numpy())
        return np.concatenate(outputs) if outputs else np.zeros((0, self.out_dim), dtype=np.float32)

    def project_table(self, table: pd.DataFrame) -> pd.DataFrame:
        """A copy of an embeddings table with projected embeddings and `output_encoder_id` as encoder_id."""
        projected = self.project(embedding_matrix(table), encoder_id=table_encoder_id(table))
        out = table.copy()
        out["embedding"] = list(projected)
        out["encoder_id"] = self.output_encoder_id
        return out

    # ----- persistence ---------------------------------------------------------------------------------------
    def _meta(self) -> dict[str, Any]:
        return {"kind": "TrainedHead", "encoder_id": self.encoder_id, "in_dim": self.in_dim, "out_dim": self.out_dim,
                "hidden_dim": self.head.hidden_dim, "config": dataclasses.asdict(self.config),
                "history": self.history, "best_epoch": self.best_epoch, "label_column": self.label_column}

    def save(self, path: str | Path) -> Path:
        """torch.save({"state_dict", "meta_json"}) to one file; `load` restores it."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {name: tensor.detach().cpu() for name, tensor in self.head.state_dict().items()}
        torch.save({"state_dict": state, META_KEY: json.dumps(self._meta())}, path)
        return path

    @classmethod
    def load(cls, path: str | Path, expected_encoder_id: str | None = None, device: str = "cpu") -> "TrainedHead":
        """Load a head written by `save`; with expected_encoder_id, refuse a head trained on another encoder."""
        path = Path(path)
        if not path.is_file():
            raise ParameterError(f"{path}: no projection head file here; train one with train_projection_head(...).save(path)")
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
            meta = json.loads(payload[META_KEY])
        except Exception as exc:  # corrupt file, or not written by TrainedHead.save
            raise ParameterError(f"{path}: not a projection head saved by TrainedHead.save ({exc}); re-train and save it") from exc
        return cls._from_parts(payload["state_dict"], meta, expected_encoder_id, source=str(path), device=device)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """{"param.<name>": weights..., "meta_json": uint8 JSON}; names fit MotionStore.save_array."""
        arrays = {f"param.{name}": tensor.detach().cpu().numpy().copy() for name, tensor in self.head.state_dict().items()}
        arrays[META_KEY] = json_to_array(self._meta())
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], expected_encoder_id: str | None = None,
                    device: str = "cpu") -> "TrainedHead":
        """Rebuild a head from `to_arrays()` output."""
        if META_KEY not in arrays:
            raise ParameterError(f"projection head arrays lack {META_KEY!r}; pass the dict from TrainedHead.to_arrays()")
        state = {name.removeprefix("param."): torch.from_numpy(np.array(value))
                 for name, value in arrays.items() if name.startswith("param.")}
        return cls._from_parts(state, array_to_json(arrays[META_KEY]), expected_encoder_id, source="arrays", device=device)

    @classmethod
    def _from_parts(cls, state: dict[str, torch.Tensor], meta: dict[str, Any], expected_encoder_id: str | None,
                    source: str, device: str) -> "TrainedHead":
        if meta.get("kind") != "TrainedHead":
            raise ParameterError(f"{source}: holds a {meta.get('kind')!r}, not a projection head")
        if expected_encoder_id is not None and meta["encoder_id"] != expected_encoder_id:
            raise EncoderMismatchError(f"{source}: this projection head belongs to encoder {meta['encoder_id']!r}, "
                                       f"but encoder {expected_encoder_id!r} was given; train a head on that encoder's embeddings")
        head = ProjectionHead(meta["in_dim"], meta["out_dim"], meta["hidden_dim"])
        head.load_state_dict(state)
        head.to(pick_torch_device(device)).eval()
        return cls(head=head, encoder_id=meta["encoder_id"], config=HeadTrainingConfig(**meta["config"]),
                   history=meta["history"], best_epoch=meta["best_epoch"], label_column=meta["label_column"])


def split_by_group(labels: np.ndarray, groups: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train/validation row indices with every group on one side only (GroupShuffleSplit).

    Validation gets at least 2 groups (so own-group exclusion leaves every query candidates) and
    training keeps at least 2; with fewer than 4 groups, or val_fraction=0, everything trains.
    """
    n_groups = len(np.unique(groups))
    n_val_groups = max(2, int(np.ceil(val_fraction * n_groups)))
    if val_fraction == 0 or n_groups - n_val_groups < 2:
        return np.arange(len(labels)), np.zeros(0, dtype=int)
    splitter = GroupShuffleSplit(n_splits=1, test_size=n_val_groups, random_state=seed)
    train_rows, val_rows = next(splitter.split(np.zeros(len(labels)), labels, groups))
    return np.sort(train_rows), np.sort(val_rows)


def train_projection_head(table: pd.DataFrame, config: HeadTrainingConfig = HeadTrainingConfig(),
                          label_column: str = "label", group_column: str = "group",
                          progress: bool = True) -> TrainedHead:
    """Train a projection head on an embeddings table; validation groups never appear in training.

    Early stopping watches validation mAP@10 (train loss when there is no validation split) and
    keeps the best epoch's weights. Returns the head with its per-epoch history.
    """
    for column in (label_column, group_column):
        if column not in table.columns:
            raise ParameterError(f"the embeddings table has no {column!r} column (columns: {list(table.columns)}); "
                                 f"pass label_column=/group_column= naming existing columns")
    encoder_id = table_encoder_id(table)
    vectors = embedding_matrix(table)
    if len(vectors) == 0:
        raise ParameterError("the embeddings table is empty; extract embeddings first (`motionmatch extract`)")
    labels = table[label_column].astype(str).to_numpy()
    groups = effective_groups(table, group_column)  # a blank group: the video is its own group
    if len(np.unique(labels)) < 2:
        raise ParameterError(f"column {label_column!r} has fewer than 2 distinct labels; metric learning needs at least 2 classes")

    seed_everything(config.seed)
    device = pick_torch_device(config.device)
    train_rows, val_rows = split_by_group(labels, groups, config.val_fraction, config.seed)
    label_codes = np.unique(labels[train_rows], return_inverse=True)[1]
    n_classes = int(label_codes.max()) + 1
    if n_classes < 2:
        raise ParameterError("the training split holds a single label; lower val_fraction or add clips of other labels")

    head = ProjectionHead(vectors.shape[1], config.out_dim, config.hidden_dim).to(device)
    if config.center_inputs:
        head.input_mean.copy_(torch.from_numpy(vectors[train_rows].mean(axis=0)))
    loss_fn, miner = build_loss(config)
    optimizer = torch.optim.AdamW(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)

    m = config.samples_per_class
    batch_size = max(m, min(config.batch_size, m * n_classes) // m * m)  # MPerClassSampler's constraints
    epoch_length = max(batch_size, -(-len(train_rows) // batch_size) * batch_size)
    sampler = samplers.MPerClassSampler(label_codes, m=m, batch_size=batch_size, length_before_new_iter=epoch_length)
    train_vectors = torch.from_numpy(vectors[train_rows]).to(device)
    train_labels = torch.from_numpy(label_codes).to(device)

    history: list[dict[str, float]] = []
    best_value, best_epoch, best_state, stale_epochs = -np.inf, 0, copy.deepcopy(head.state_dict()), 0
    epochs = tqdm(range(1, config.max_epochs + 1), desc=f"projection head ({config.loss})", disable=not progress)
    for epoch in epochs:
        head.train()
        order = torch.as_tensor(list(iter(sampler)), device=device)
        batch_losses = []
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            embeddings = head(train_vectors[batch])
            batch_labels = train_labels[batch]
            loss = loss_fn(embeddings, batch_labels, miner(embeddings, batch_labels)) if miner else loss_fn(embeddings, batch_labels)
            optimizer.zero_grad()
            if loss.requires_grad:
                loss.backward()
                optimizer.step()
            batch_losses.append(float(loss.detach()))
        record = {"epoch": epoch, "train_loss": float(np.mean(batch_losses))}
        if len(val_rows):
            head.eval()
            with torch.inference_mode():
                projected = head(torch.from_numpy(vectors[val_rows]).to(device)).cpu().numpy()
            metrics = retrieval_metrics(projected, labels[val_rows], groups[val_rows], k=10)
            record.update({f"val {name}": value for name, value in metrics.items()})
            monitored = metrics["mAP@10"]
        else:
            monitored = -record["train_loss"]
        history.append(record)
        epochs.set_postfix({key: round(value, 4) for key, value in record.items() if key != "epoch"})
        if monitored > best_value + 1e-6:
            best_value, best_epoch, best_state, stale_epochs = monitored, epoch, copy.deepcopy(head.state_dict()), 0
        else:
            stale_epochs += 1
            if stale_epochs >= config.patience:
                break
    head.load_state_dict(best_state)
    head.eval()
    return TrainedHead(head=head, encoder_id=encoder_id, config=config, history=history,
                       best_epoch=best_epoch, label_column=label_column)
