"""The training loop: seeded AdamW over a backbone's trainable part with early stopping on
validation top-1 error, a linear-head fast path over cached features, exact metrics, and atomic
hash-checked checkpoints.

On CUDA it trains under autocast (bf16 where the GPU has it, else fp16 with a GradScaler) with
channels_last inputs and weights; on the CPU it trains in float32. Seeded runs repeat exactly on
the CPU; on CUDA cuDNN autotuning trades bit-exactness for speed.
"""

from __future__ import annotations

import contextlib
import copy
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from training.ml.backbones import MODES, Backbone, frozen_eval, mode_apply, param_groups
from training.ml.catalog import CheckpointCorrupt, sha256_file
from training.ml.data import pixels_normalise

CHECKPOINT_FORMAT = "crowdnet-checkpoint/1"
Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class Shard:
    """This process's part of a data-parallel run (`torch.distributed` initialised): every
    process walks the same global batches and takes rows ``rank::world`` of each; its loss is
    weighted by its share of the batch, so the gradients DistributedDataParallel averages are
    those of the whole batch, as one process would compute them."""

    rank: int
    world: int

    def split(
        self, inputs: torch.Tensor, targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, float]:
        """This rank's rows of a global batch and the weight of its mean loss. A rank left
        without rows (a last batch smaller than the world) takes one row at weight 0: every
        rank must run the backward pass that carries the all-reduce."""
        mine = slice(self.rank, None, self.world)
        local_inputs, local_targets = inputs[mine], targets[mine]
        if len(local_targets) == 0:
            return inputs[:1], targets[:1], 0.0
        return local_inputs, local_targets, len(local_targets) * self.world / len(targets)

    def agree(self, flag: bool) -> bool:
        """True on every rank when any rank says so (a cancel seen by one stops all)."""
        import torch.distributed as dist

        value = torch.tensor([1 if flag else 0])
        if dist.get_backend() == "nccl":
            value = value.cuda()
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def total(self, value: torch.Tensor) -> torch.Tensor:
        """The sum of ``value`` over every rank."""
        import torch.distributed as dist

        summed = value.detach().clone()
        dist.all_reduce(summed)
        return summed


class TrainingCancelled(Exception):
    """`should_stop` returned True: training stopped between two batches."""


@dataclass(frozen=True)
class TrainConfig:
    """How to train. `patience`: stop after that many epochs without a lower validation top-1
    error (None: never). `amp` and `channels_last` apply on CUDA only; `amp_dtype` is "auto"
    (bf16 where supported, else fp16), "bf16" or "fp16". `num_workers` and `image_size` are for
    whoever builds the loaders. `feature_batch_size`: the batch of a head trained on cached
    features (`train_head_on_features`); a step there costs little more at 256 than at 32, so
    an epoch takes a fraction of the time for the same error on the digits (docs/benchmarks.md).
    `mistakes`: how many of the validation examples it gets most wrong a result keeps.
    """

    mode: str = "fine_tune"
    epochs: int = 10
    batch_size: int = 32
    feature_batch_size: int = 256
    lr: float = 1e-3
    backbone_lr_scale: float = 0.1
    weight_decay: float = 1e-4
    seed: int = 0
    patience: int | None = 3
    device: str = "auto"
    amp: bool = True
    amp_dtype: str = "auto"
    channels_last: bool = True
    num_workers: int = 0
    image_size: int | None = None
    mistakes: int = 48

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; choose one of: {', '.join(MODES)}")
        if self.epochs < 1 or self.batch_size < 1 or self.feature_batch_size < 1:
            raise ValueError("epochs, batch_size and feature_batch_size must be at least 1")
        if self.lr < 0 or self.weight_decay < 0 or self.backbone_lr_scale < 0:
            raise ValueError("lr, weight_decay and backbone_lr_scale must not be negative")
        if self.mistakes < 0:
            raise ValueError("mistakes must not be negative")
        if self.patience is not None and self.patience < 1:
            raise ValueError("patience must be at least 1, or None")
        if self.amp_dtype not in ("auto", "bf16", "fp16"):
            raise ValueError(f"amp_dtype must be auto, bf16 or fp16, not {self.amp_dtype!r}")


@dataclass(frozen=True)
class EpochStats:
    """One epoch: mean losses per image, validation errors in [0, 1], training throughput."""

    epoch: int
    train_loss: float
    val_loss: float
    top1_error: float
    top5_error: float
    images_per_second: float
    seconds: float


@dataclass(frozen=True)
class Mistake:
    """A validation example whose top-1 answer is not its label. `index` is its position in
    the validation batches; probabilities are the softmax of the net's logits."""

    index: int
    label: int
    predicted: int
    confidence: float
    label_probability: float


@dataclass(frozen=True)
class TrainResult:
    """The run, scored at its best epoch (whose weights the net holds afterwards).

    `top5_error` is the top-k error with k = `top5_k` = min(5, number of classes).
    `per_class_error[c]` is None when class c has no validation image. `confusion[true][pred]`.
    `mistakes`: the validation examples the net gets most wrong at that epoch, at most
    `TrainConfig.mistakes` of them (see `mistakes_rank`).
    """

    epochs: list[EpochStats]
    best_epoch: int
    top1_error: float
    top5_error: float
    top5_k: int
    per_class_error: list[float | None]
    confusion: list[list[int]]
    device: str
    stopped_early: bool
    mistakes: list[Mistake] = field(default_factory=list)


@dataclass(frozen=True)
class _Runtime:
    device: torch.device
    amp_dtype: torch.dtype | None
    channels_last: bool
    # the backbone's per-channel mean and std: uint8 batches are normalised on the device
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=self.amp_dtype)

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        if x.dtype == torch.uint8:
            if self.mean is None or self.std is None:
                raise ValueError("uint8 inputs need the backbone's mean and std to normalise")
            x = pixels_normalise(x, self.mean, self.std)
        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def device_resolve(name: str) -> torch.device:
    """The torch device for "auto" (CUDA when available, else CPU), "cpu", "cuda" or "cuda:N"."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ValueError(f"unknown device {name!r}: use auto, cpu or cuda") from error
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"unsupported device {name!r}: use auto, cpu or cuda")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {name!r} was asked for, but PyTorch sees no usable CUDA GPU here "
            "(torch.cuda.is_available() is False): use device 'auto' or 'cpu'"
        )
    return device


def _runtime(config: TrainConfig, *, images: bool) -> _Runtime:
    device = device_resolve(config.device)
    if device.type != "cuda":
        return _Runtime(device, None, False)
    torch.backends.cudnn.benchmark = True
    amp_dtype = None
    if config.amp and images:
        bf16 = config.amp_dtype == "bf16" or (
            config.amp_dtype == "auto" and torch.cuda.is_bf16_supported()
        )
        amp_dtype = torch.bfloat16 if bf16 else torch.float16
    return _Runtime(device, amp_dtype, config.channels_last and images)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's (CPU and CUDA) global generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def head_classes(net: nn.Module) -> int:
    """Number of classes the net's head outputs (the first dimension of its last parameter)."""
    parameters = list(net.get_submodule("head").parameters())
    if not parameters:
        raise ValueError("the head has no parameters, so its class count is unknown")
    return int(parameters[-1].shape[0])


# (top-1 error, top-k error, per-class error, confusion[true][pred])
Scores = tuple[float, float, list[float | None], list[list[int]]]


def metrics(logits: torch.Tensor, labels: torch.Tensor, num_classes: int) -> Scores:
    """(top-1 error, top-k error with k = min(5, K), per-class error, confusion[true][pred]).

    Errors are fractions in [0, 1]; a class without examples has per-class error None.
    """
    labels = labels.to(logits.device).long()
    if logits.ndim != 2 or logits.shape[1] != num_classes or len(labels) != len(logits):
        raise ValueError(f"need logits (N, {num_classes}) and N labels")
    if len(labels) == 0:
        raise ValueError("no examples to score")
    if int(labels.min()) < 0 or int(labels.max()) >= num_classes:
        raise ValueError(f"labels must lie in [0, {num_classes})")
    count = len(labels)
    predicted = logits.argmax(dim=1)
    top1 = int((predicted != labels).sum()) / count
    top_k = logits.topk(min(5, num_classes), dim=1).indices
    top5 = int((top_k != labels[:, None]).all(dim=1).sum()) / count
    confusion = torch.bincount(labels * num_classes + predicted, minlength=num_classes**2)
    confusion = confusion.reshape(num_classes, num_classes).cpu()
    support = confusion.sum(dim=1).tolist()
    correct = confusion.diagonal().tolist()
    per_class: list[float | None] = [
        None if n == 0 else 1.0 - hit / n for hit, n in zip(correct, support, strict=True)
    ]
    return top1, top5, per_class, confusion.tolist()


def mistakes_rank(logits: torch.Tensor, labels: torch.Tensor, limit: int) -> list[Mistake]:
    """The misclassified examples, most wrong first: the lowest probability on the label
    (ties: the more confident wrong answer, then the lower index), at most `limit`. Rows
    with a non-finite logit (a diverged net) have no probabilities to rank and are left out.
    The `limit` lowest are picked on the device; only they are copied and sorted."""
    labels = labels.to(logits.device).long()
    probabilities = logits.float().softmax(dim=1)
    confidence, predicted = probabilities.max(dim=1)
    on_label = probabilities.gather(1, labels[:, None]).squeeze(1)
    finite = torch.isfinite(logits).all(dim=1)
    wrong = ((predicted != labels) & finite).nonzero().squeeze(1)
    if limit < 1 or len(wrong) == 0:
        return []
    # a margin past `limit` so that ties at the cut are still ordered by the full key
    keep = on_label[wrong].topk(min(len(wrong), 2 * limit), largest=False).indices
    wrong = wrong[keep]
    rows = sorted(
        zip(
            wrong.tolist(),
            labels[wrong].tolist(),
            predicted[wrong].tolist(),
            confidence[wrong].tolist(),
            on_label[wrong].tolist(),
            strict=True,
        ),
        key=lambda row: (row[4], -row[3], row[0]),
    )
    return [Mistake(*row) for row in rows[:limit]]


def train(
    backbone: Backbone,
    train_loader: Batches,
    val_loader: Batches,
    config: TrainConfig,
    *,
    on_epoch: Callable[[EpochStats], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    shard: Shard | None = None,
) -> TrainResult:
    """Train `backbone.net` in `config.mode`; the net ends on the device with its best weights.

    Batches are (inputs, labels): float inputs as `Preprocess` makes them, or uint8 pixels
    (`DecodedBatches`) that are normalised on the device with the backbone's mean and std.
    With a `shard` (a process of `training.ml.distributed`), the net trains wrapped in
    DistributedDataParallel on this rank's rows of every batch; on CUDA its batch norms are
    synchronised (whole-batch statistics), on the CPU each rank's batch norm sees its rows."""
    channels = backbone.in_channels
    runtime = replace(
        _runtime(config, images=True),
        mean=tuple(backbone.mean[:channels]),
        std=tuple(backbone.std[:channels]),
    )
    seed_everything(config.seed)
    net = backbone.net.to(runtime.device)
    if runtime.channels_last:
        net.to(memory_format=torch.channels_last)
    mode_apply(backbone, config.mode)
    groups = param_groups(backbone, config.mode, config.lr, config.backbone_lr_scale)

    def set_train() -> None:
        net.train()
        frozen_eval(backbone, config.mode)

    model: nn.Module = net
    if shard is not None:
        from torch.nn.parallel import DistributedDataParallel

        ids = None
        if runtime.device.type == "cuda":
            # batch statistics over the whole batch, as in one process (GPU only in torch)
            nn.SyncBatchNorm.convert_sync_batchnorm(net)
            ids = [runtime.device.index]
        model = DistributedDataParallel(net, device_ids=ids)
    return _fit(
        model,
        groups,
        lambda: train_loader,
        lambda: val_loader,
        head_classes(net),
        config,
        runtime,
        set_train,
        on_epoch,
        should_stop,
        shard,
    )


def train_head_on_features(
    features: torch.Tensor | np.ndarray,
    labels: torch.Tensor | np.ndarray,
    val_features: torch.Tensor | np.ndarray,
    val_labels: torch.Tensor | np.ndarray,
    num_classes: int,
    config: TrainConfig,
    *,
    head: nn.Module | None = None,
    on_epoch: Callable[[EpochStats], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[dict[str, torch.Tensor], TrainResult]:
    """Train a head (default: a new Linear, as `Backbone.net.head` is) on fixed trunk features.

    The feature_extraction fast path over cached embeddings (N, feature_dim). A Linear head
    with a bias trains on features standardised with the training set's mean and std (trunks
    differ in scale by orders of magnitude: a random EfficientNet-Lite0 gives about 1e-9), and
    the standardisation is folded into its weights at the end. Returns the best epoch's head
    state dict on the CPU, for raw features (loadable into `backbone.net.head`), and the run.
    """
    runtime = _runtime(config, images=False)
    seed_everything(config.seed)
    x, y = _as_tensors(features, labels, runtime.device)
    val_x, val_y = _as_tensors(val_features, val_labels, runtime.device)
    if head is None:
        head = nn.Linear(x.shape[1], num_classes)
    head = head.to(runtime.device)
    mean = torch.zeros(x.shape[1], device=runtime.device)
    scale = torch.ones(x.shape[1], device=runtime.device)
    standardise = isinstance(head, nn.Linear) and head.bias is not None
    if standardise:
        mean, scale = x.mean(dim=0), x.std(dim=0, correction=0)
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        x, val_x = (x - mean) / scale, (val_x - mean) / scale
    generator = torch.Generator().manual_seed(config.seed)

    def train_batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(x), generator=generator).to(runtime.device)
        for start in range(0, len(x), config.feature_batch_size):
            index = order[start : start + config.feature_batch_size]
            yield x[index], y[index]

    def val_batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for start in range(0, len(val_x), 4096):
            yield val_x[start : start + 4096], val_y[start : start + 4096]

    result = _fit(
        head,
        [{"params": list(head.parameters()), "lr": config.lr}],
        train_batches,
        val_batches,
        num_classes,
        config,
        runtime,
        head.train,
        on_epoch,
        should_stop,
    )
    state = {key: value.detach() for key, value in head.state_dict().items()}
    if standardise:
        # W z + b with z = (x - mean) / scale  ==  (W / scale) x + (b - (W / scale) mean)
        weight = state["weight"] / scale
        state = {"weight": weight, "bias": state["bias"] - weight @ mean}
    return {key: value.cpu() for key, value in state.items()}, result


def _as_tensors(
    features: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.as_tensor(features).to(device=device, dtype=torch.float32)
    y = torch.as_tensor(labels).to(device=device, dtype=torch.long)
    if x.ndim != 2 or y.shape != (len(x),):
        raise ValueError(f"need features (N, D) and N labels, got {tuple(x.shape)}, {y.shape}")
    return x, y


def _fit(
    model: nn.Module,
    groups: list[dict[str, Any]],
    train_batches: Callable[[], Batches],
    val_batches: Callable[[], Batches],
    num_classes: int,
    config: TrainConfig,
    runtime: _Runtime,
    set_train: Callable[..., object],
    on_epoch: Callable[[EpochStats], None] | None,
    should_stop: Callable[[], bool] | None,
    shard: Shard | None = None,
) -> TrainResult:
    optimizer = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=runtime.amp_dtype == torch.float16)
    history: list[EpochStats] = []
    best: tuple[int, Scores, list[Mistake]] | None = None
    best_state: dict[str, torch.Tensor] = {}
    stalled = 0
    for epoch in range(1, config.epochs + 1):
        started = time.perf_counter()
        set_train()
        loss_sum = torch.zeros((), device=runtime.device)
        seen = 0
        for inputs, targets in train_batches():
            stop = should_stop is not None and should_stop()
            if shard is not None:
                stop = shard.agree(stop)
            if stop:
                raise TrainingCancelled(f"cancelled in epoch {epoch}")
            weight = 1.0
            if shard is not None:
                inputs, targets, weight = shard.split(inputs, targets)
            inputs, targets = runtime.inputs(inputs), targets.to(runtime.device, non_blocking=True)
            with runtime.autocast():
                loss = F.cross_entropy(model(inputs).float(), targets)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss * weight if shard is not None else loss).backward()
            scaler.step(optimizer)
            scaler.update()
            if weight:
                loss_sum += loss.detach() * len(targets)
                seen += len(targets)
        runtime.synchronize()
        train_seconds = time.perf_counter() - started
        if shard is not None:  # the whole batch's figures, on every rank
            loss_sum = shard.total(loss_sum)
            seen = int(shard.total(torch.tensor(seen, device=runtime.device)).item())
        if seen == 0:
            raise ValueError("the training set is empty")
        val_loss, scores, mistakes = _evaluate(
            model, val_batches(), num_classes, runtime, config.mistakes
        )
        stats = EpochStats(
            epoch=epoch,
            train_loss=loss_sum.item() / seen,
            val_loss=val_loss,
            top1_error=scores[0],
            top5_error=scores[1],
            images_per_second=seen / max(train_seconds, 1e-9),
            seconds=time.perf_counter() - started,
        )
        history.append(stats)
        if on_epoch is not None:
            on_epoch(stats)
        if best is None or scores[0] < best[1][0]:
            best, stalled = (epoch, scores, mistakes), 0
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        else:
            stalled += 1
            if config.patience is not None and stalled >= config.patience:
                break
    assert best is not None
    model.load_state_dict(best_state)
    top1, top5, per_class, confusion = best[1]
    return TrainResult(
        epochs=history,
        best_epoch=best[0],
        top1_error=top1,
        top5_error=top5,
        top5_k=min(5, num_classes),
        per_class_error=per_class,
        confusion=confusion,
        device=str(runtime.device),
        stopped_early=len(history) < config.epochs,
        mistakes=best[2],
    )


def _evaluate(
    model: nn.Module, batches: Batches, num_classes: int, runtime: _Runtime, mistakes: int
) -> tuple[float, Scores, list[Mistake]]:
    """Mean validation loss per image, `metrics` and `mistakes_rank` over all validation
    batches."""
    model.eval()
    logits: list[torch.Tensor] = []
    labels: list[torch.Tensor] = []
    with torch.no_grad():
        for inputs, targets in batches:
            with runtime.autocast():
                logits.append(model(runtime.inputs(inputs)).float())
            labels.append(targets.to(runtime.device))
    if not logits:
        raise ValueError("the validation set is empty")
    all_logits, all_labels = torch.cat(logits), torch.cat(labels)
    loss = F.cross_entropy(all_logits, all_labels).item()
    return (
        loss,
        metrics(all_logits, all_labels, num_classes),
        mistakes_rank(all_logits, all_labels, mistakes),
    )


def _check_plain(value: object, where: str = "extra") -> None:
    """Only what `torch.load(weights_only=True)` reads back: plain types and tensors."""
    if value is None or isinstance(value, bool | int | float | str | torch.Tensor):
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_plain(item, f"{where}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where} has a non-string key {key!r}")
            _check_plain(item, f"{where}[{key!r}]")
        return
    raise TypeError(f"{where} is a {type(value).__name__}: checkpoints hold plain types only")


def checkpoint_save(
    path: Path,
    backbone: Backbone,
    num_classes: int,
    class_names: list[str],
    extra: dict[str, Any],
) -> str:
    """Write the net's weights and labels to `path` atomically; return the file's sha256.

    The bytes go to a temporary file beside `path`, are fsynced, then renamed over it: a reader
    sees the old file or the new one, never a part. Loadable with ``weights_only=True``.
    """
    if len(class_names) != num_classes or num_classes != head_classes(backbone.net):
        raise ValueError(
            f"{len(class_names)} class names, num_classes {num_classes}, "
            f"head outputs {head_classes(backbone.net)}: all three must agree"
        )
    _check_plain(extra)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "backbone": backbone.name,
        "num_classes": num_classes,
        "class_names": [str(name) for name in class_names],
        "state_dict": {
            key: value.detach().to("cpu", copy=True).contiguous()
            for key, value in backbone.net.state_dict().items()
        },
        "extra": copy.deepcopy(extra),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(payload, file)
            file.flush()
            os.fsync(file.fileno())
        digest = sha256_file(Path(temporary))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return digest


def checkpoint_read(path: Path, expected_sha256: str | None = None) -> dict[str, Any]:
    """Load a checkpoint (``weights_only=True``) after checking its sha256 when one is given.

    Returns the saved dict (format, backbone, num_classes, class_names, state_dict, extra) plus
    "sha256", the file's actual hash.
    """
    path = Path(path)
    digest = sha256_file(path)
    if expected_sha256 is not None and digest != expected_sha256.lower():
        raise CheckpointCorrupt(
            f"checkpoint {path} has sha256 {digest}, but {expected_sha256} was recorded: "
            "the file was changed or damaged"
        )
    try:
        payload = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as error:
        raise CheckpointCorrupt(f"checkpoint {path} cannot be read: {error}") from error
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointCorrupt(f"{path} is not a {CHECKPOINT_FORMAT} checkpoint")
    return {**payload, "sha256": digest}
