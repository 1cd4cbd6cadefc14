"""Partial fine-tuning on a tiny randomly initialised VJEPA2Model (the real transformers code path)."""
from __future__ import annotations

import pytest
import torch
from transformers import VJEPA2Config, VJEPA2Model

from motionmatch.errors import ParameterError
from motionmatch.finetune import count_trainable, partial_finetune, unfreeze_last_blocks
from motionmatch.metric_learning import HeadTrainingConfig

FRAMES, SIZE = 4, 32


def tiny_model(seed: int = 0) -> VJEPA2Model:
    torch.manual_seed(seed)
    config = VJEPA2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, mlp_ratio=2.0,
                          crop_size=SIZE, frames_per_clip=FRAMES, patch_size=8, tubelet_size=2,
                          pred_hidden_size=16, pred_num_hidden_layers=1, pred_num_attention_heads=2)
    return VJEPA2Model(config)


def toy_batches(n_batches: int = 2, per_class: int = 4, seed: int = 0) -> list[tuple[torch.Tensor, list[str]]]:
    """Two classes of clips: a shared random clip plus a weak class pattern plus strong noise.
    Separable, but not already separated by the random model (the loss starts well above zero)."""
    generator = torch.Generator().manual_seed(seed)
    shared = torch.randn(FRAMES, 3, SIZE, SIZE, generator=generator)
    patterns = torch.randn(2, FRAMES, 3, SIZE, SIZE, generator=generator)
    batches = []
    for _ in range(n_batches):
        labels = ["wave"] * per_class + ["jump"] * per_class
        clips = torch.stack([shared + 0.3 * patterns[0 if label == "wave" else 1] for label in labels])
        batches.append((clips + torch.randn(clips.shape, generator=generator), labels))
    return batches


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: parameter.detach().clone() for name, parameter in model.named_parameters()}


def test_only_the_last_blocks_change():
    model = tiny_model()
    before = snapshot(model)
    result = partial_finetune(model, toy_batches(n_batches=1), unfreeze_last_n=1,
                              config=HeadTrainingConfig(loss="ntxent", max_epochs=1, lr=1e-2, out_dim=16), progress=False)
    assert result.model is model
    trainable_prefixes = ("encoder.layer.1.", "encoder.layernorm.")
    assert result.trainable_parameter_names and all(name.startswith(trainable_prefixes)
                                                    for name in result.trainable_parameter_names)
    changed = {name for name, parameter in model.named_parameters() if not torch.equal(parameter, before[name])}
    assert changed, "no parameter moved after a training step"
    assert all(name.startswith(trainable_prefixes) for name in changed), sorted(changed)
    assert any(name.startswith("encoder.layer.1.attention") for name in changed)
    assert any(name.startswith("encoder.layernorm") for name in changed)
    for name, parameter in model.named_parameters():  # frozen: embeddings, block 0, predictor
        if not name.startswith(trainable_prefixes):
            assert torch.equal(parameter, before[name]), name


@pytest.mark.parametrize("loss", ["triplet", "ntxent"])
def test_loss_decreases_on_a_separable_toy_problem(loss):
    model = tiny_model(seed=1)
    batches = toy_batches(n_batches=2, seed=1)
    config = HeadTrainingConfig(loss=loss, triplet_miner="all", max_epochs=6, patience=6, lr=5e-3, out_dim=16)
    result = partial_finetune(model, batches, unfreeze_last_n=2, config=config, progress=False)
    losses = [record["train_loss"] for record in result.history]
    assert len(losses) == 6
    assert losses[0] > 0.05 and losses[-1] < 0.5 * losses[0], losses
    embeddings = result.embed(batches[0][0])
    assert embeddings.shape == (8, 16)
    same = embeddings[:4] @ embeddings[:4].T
    across = embeddings[:4] @ embeddings[4:].T
    assert same.mean() > across.mean()


def test_count_trainable_and_bad_block_counts():
    model = tiny_model()
    assert count_trainable(model) == sum(parameter.numel() for parameter in model.parameters())
    unfreeze_last_blocks(model, 1)
    expected = sum(p.numel() for p in model.encoder.layer[1].parameters()) + \
        sum(p.numel() for p in model.encoder.layernorm.parameters())
    assert count_trainable(model) == expected
    with pytest.raises(ParameterError, match="between 1 and the model's 2 encoder blocks"):
        unfreeze_last_blocks(model, 3)
    with pytest.raises(ParameterError, match="VJEPA2Model"):
        unfreeze_last_blocks(torch.nn.Linear(2, 2), 1)
