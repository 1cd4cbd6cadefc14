"""Optional partial fine-tuning of V-JEPA 2: train the last N encoder blocks plus a projection head.

Why only the last blocks? They hold the most task-specific features, while the early blocks'
generic spatio-temporal filters transfer as they are; training a few blocks is affordable on
one GPU and less prone to forgetting on small labelled sets than full fine-tuning.

The model is a transformers `VJEPA2Model`: `model.encoder.layer` is the list of transformer
blocks and `model.encoder.layernorm` the final norm; the predictor (used only for V-JEPA's
masked-prediction pretraining) stays frozen and is skipped (`skip_predictor=True`). The
clip embedding is the mean of the last hidden state over tokens, as at extraction time.
"""
from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from motionmatch.errors import ParameterError
from motionmatch.validation import check_scalar
from motionmatch.metric_learning import HeadTrainingConfig, ProjectionHead, build_loss, pick_torch_device, seed_everything


def count_trainable(model: nn.Module) -> int:
    """Number of parameters with requires_grad=True."""
    return sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)


def unfreeze_last_blocks(model: nn.Module, unfreeze_last_n: int) -> list[str]:
    """Freeze every parameter, then unfreeze the last N encoder blocks and the final layernorm.

    Returns the names of the trainable parameters.
    """
    encoder = getattr(model, "encoder", None)
    if encoder is None or not hasattr(encoder, "layer") or not hasattr(encoder, "layernorm"):
        raise ParameterError(f"partial fine-tuning expects a transformers VJEPA2Model (model.encoder.layer and "
                             f"model.encoder.layernorm); got {type(model).__name__}")
    n_blocks = len(encoder.layer)
    check_scalar(unfreeze_last_n, "unfreeze_last_n", int)
    if not 1 <= unfreeze_last_n <= n_blocks:
        raise ParameterError(f"unfreeze_last_n={unfreeze_last_n} must be between 1 and the model's {n_blocks} encoder blocks")
    model.requires_grad_(False)
    for block in encoder.layer[n_blocks - unfreeze_last_n:]:
        block.requires_grad_(True)
    encoder.layernorm.requires_grad_(True)
    return [name for name, parameter in model.named_parameters() if parameter.requires_grad]


def clip_embeddings(model: nn.Module, pixel_values_videos: torch.Tensor) -> torch.Tensor:
    """Mean-pooled last hidden state of the encoder, (B, hidden_size) float32; the predictor is skipped."""
    parameter = next(model.parameters())
    pixel_values_videos = pixel_values_videos.to(device=parameter.device, dtype=parameter.dtype)
    hidden = model(pixel_values_videos=pixel_values_videos, skip_predictor=True).last_hidden_state
    return hidden.mean(dim=1).float()


@dataclass
class FinetuneResult:
    """What partial_finetune trained. `model` is the same object that was passed in, updated in place."""

    model: nn.Module
    head: ProjectionHead  # on top of the mean-pooled embedding; outputs L2-normalised
    trainable_parameter_names: list[str]
    trainable_parameters: int  # encoder parameters trained (the head's not included)
    history: list[dict[str, float]] = field(default_factory=list)  # per epoch: epoch, train_loss
    best_epoch: int = 0  # epoch whose weights were kept (lowest train loss)

    def embed(self, pixel_values_videos: torch.Tensor) -> np.ndarray:
        """Projected, L2-normalised embeddings of a batch of clips, (B, out_dim) float32."""
        self.model.eval()
        self.head.eval()
        with torch.inference_mode():
            return self.head(clip_embeddings(self.model, pixel_values_videos)).float().cpu().numpy()


def partial_finetune(model: nn.Module, batches: Iterable[tuple[torch.Tensor, Sequence[Any] | torch.Tensor]],
                     unfreeze_last_n: int = 2, config: HeadTrainingConfig = HeadTrainingConfig(),
                     progress: bool = True) -> FinetuneResult:
    """Fine-tune the last `unfreeze_last_n` blocks of a VJEPA2Model and a projection head with a metric loss.

    batches: a re-iterable (list, DataLoader) of (pixel_values_videos (B, T, 3, S, S) float tensor, labels)
    pairs; labels are ints or strings, and every batch should hold at least two clips of some label
    (sample it with pytorch_metric_learning.samplers.MPerClassSampler). Each epoch is one pass; early
    stopping on the epoch's mean train loss (config.patience) keeps the best trainable weights.
    Uses config.loss/margin/temperature/triplet_miner/lr/weight_decay/max_epochs/patience/seed/device/
    out_dim/hidden_dim; the split and sampler fields apply to `train_projection_head` only.
    """
    seed_everything(config.seed)
    device = pick_torch_device(config.device)
    trainable_names = unfreeze_last_blocks(model, unfreeze_last_n)
    model.to(device)
    hidden_size = int(model.config.hidden_size)
    head = ProjectionHead(hidden_size, config.out_dim, config.hidden_dim).to(device)
    trainable = [parameter for parameter in model.parameters() if parameter.requires_grad] + list(head.parameters())
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay)
    loss_fn, miner = build_loss(config)
    label_codes: dict[Any, int] = {}

    def trainable_state() -> dict[str, dict[str, torch.Tensor]]:
        encoder_state = {name: parameter.detach().clone() for name, parameter in model.named_parameters()
                         if parameter.requires_grad}
        return {"encoder": encoder_state, "head": copy.deepcopy(head.state_dict())}

    history: list[dict[str, float]] = []
    best_loss, best_epoch, best_state, stale_epochs = np.inf, 0, trainable_state(), 0
    model.eval()  # frozen blocks stay in inference behaviour (no drop-path)
    n_blocks = len(model.encoder.layer)
    epochs = tqdm(range(1, config.max_epochs + 1), desc=f"fine-tune last {unfreeze_last_n} blocks", disable=not progress)
    for epoch in epochs:
        for block in model.encoder.layer[n_blocks - unfreeze_last_n:]:
            block.train()
        head.train()
        batch_losses = []
        for pixel_values_videos, labels in batches:
            codes = torch.as_tensor([label_codes.setdefault(_hashable(label), len(label_codes)) for label in labels],
                                    device=device)
            embeddings = head(clip_embeddings(model, pixel_values_videos))
            loss = loss_fn(embeddings, codes, miner(embeddings, codes)) if miner else loss_fn(embeddings, codes)
            optimizer.zero_grad()
            if loss.requires_grad:
                loss.backward()
                optimizer.step()
            batch_losses.append(float(loss.detach()))
        if not batch_losses:
            raise ParameterError("partial_finetune got no batches; pass a list or DataLoader of (pixel_values_videos, labels)")
        record = {"epoch": epoch, "train_loss": float(np.mean(batch_losses))}
        history.append(record)
        epochs.set_postfix(train_loss=round(record["train_loss"], 4))
        if record["train_loss"] < best_loss - 1e-6:
            best_loss, best_epoch, best_state, stale_epochs = record["train_loss"], epoch, trainable_state(), 0
        else:
            stale_epochs += 1
            if stale_epochs >= config.patience:
                break
    with torch.no_grad():
        parameters = dict(model.named_parameters())
        for name, value in best_state["encoder"].items():
            parameters[name].copy_(value)
    head.load_state_dict(best_state["head"])
    model.eval()
    head.eval()
    return FinetuneResult(model=model, head=head, trainable_parameter_names=trainable_names,
                          trainable_parameters=count_trainable(model), history=history, best_epoch=best_epoch)


def _hashable(label: Any) -> Any:
    """Label tensors/numpy scalars -> python values usable as dict keys."""
    return label.item() if hasattr(label, "item") else label
