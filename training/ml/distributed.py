"""Data-parallel training over the GPUs of one host: `torch.multiprocessing` spawns one process
per device, each trains the same net wrapped in DistributedDataParallel on its rows of every
batch (`loop.Shard`), and the gradients are averaged so that the run follows the one-process run
up to floating-point noise. On the CPU the same code runs with the gloo backend (tests, and
hosts without GPUs).

The images are decoded once, in the caller's process, into uint8 tensors that the spawned
processes share (`KeptBatches`); each process copies them to its own device. Rank 0 reports
every epoch and the result to the caller through a queue and leaves the best weights in a
file; the caller keeps the heartbeat and the cancel check, and tells the ranks to stop through
an event that they agree on each batch. Pure PyTorch: no Django.
"""

from __future__ import annotations

import os
import queue as queue_module
import socket
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from training.ml.backbones import Backbone, backbone_build
from training.ml.loop import EpochStats, Shard, TrainConfig, TrainingCancelled, TrainResult, train


@dataclass
class KeptBatches:
    """Decoded uint8 pixels and labels, batched in a seeded order that every rank repeats:
    a new permutation each pass when ``shuffle``."""

    pixels: torch.Tensor
    labels: torch.Tensor
    batch_size: int
    shuffle: bool
    seed: int = 0
    passes: int = 0

    @classmethod
    def of(cls, batches: Any, *, shuffle: bool, batch_size: int, seed: int = 0) -> KeptBatches:
        """Everything ``batches`` yields, kept in order (decoding it once)."""
        pixels, labels = [], []
        for inputs, targets in batches:
            pixels.append(inputs.cpu())
            labels.append(targets.cpu())
        return cls(torch.cat(pixels), torch.cat(labels), batch_size, shuffle, seed)

    def to(self, device: torch.device) -> KeptBatches:
        return KeptBatches(
            self.pixels.to(device), self.labels.to(device), self.batch_size, self.shuffle, self.seed
        )

    def __len__(self) -> int:
        return -(-len(self.labels) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        count = len(self.labels)
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.passes)
            order = torch.randperm(count, generator=generator).to(self.pixels.device)
        else:
            order = torch.arange(count, device=self.pixels.device)
        self.passes += 1
        for start in range(0, count, self.batch_size):
            index = order[start : start + self.batch_size]
            yield self.pixels[index], self.labels[index]


@dataclass(frozen=True)
class _Job:
    backbone: str
    num_classes: int
    start: str  # a file with the net's starting state dict
    best: str  # where rank 0 leaves the best weights
    config: TrainConfig
    port: int
    backend: str


def processes_for(requested: int) -> int:
    """How many processes a run trains in: ``requested``, or with 0 one per visible GPU
    (at least 1)."""
    if requested > 0:
        return requested
    return max(1, torch.cuda.device_count())


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _rank_main(
    rank: int,
    world: int,
    job: _Job,
    train_batches: KeptBatches,
    val_batches: KeptBatches,
    reports: Any,
    stop: Any,
) -> None:
    cuda = job.backend == "nccl"
    if cuda:
        torch.cuda.set_device(rank)
    dist.init_process_group(
        job.backend, init_method=f"tcp://127.0.0.1:{job.port}", rank=rank, world_size=world
    )
    try:
        backbone = backbone_build(job.backbone, job.num_classes)
        backbone.net.load_state_dict(torch.load(job.start, weights_only=True))
        config = job.config
        if cuda:
            config = TrainConfig(**{**config.__dict__, "device": f"cuda:{rank}"})
        device = torch.device(f"cuda:{rank}" if cuda else "cpu")

        def on_epoch(stats: EpochStats) -> None:
            if rank == 0:
                reports.put(("epoch", stats))

        try:
            result = train(
                backbone,
                train_batches.to(device),
                val_batches.to(device),
                config,
                on_epoch=on_epoch,
                should_stop=stop.is_set,
                shard=Shard(rank, world),
            )
        except TrainingCancelled as cancelled:
            if rank == 0:
                reports.put(("cancelled", str(cancelled)))
            return
        if rank == 0:
            state = {k: v.detach().cpu() for k, v in backbone.net.state_dict().items()}
            torch.save(state, job.best)
            reports.put(("done", result))
    finally:
        dist.destroy_process_group()


def train_distributed(
    backbone: Backbone,
    train_batches: KeptBatches,
    val_batches: KeptBatches,
    config: TrainConfig,
    *,
    processes: int,
    on_epoch: Callable[[EpochStats], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    poll_seconds: float = 0.5,
) -> TrainResult:
    """`loop.train` in ``processes`` processes (one per GPU on CUDA, gloo on the CPU); the
    backbone's net ends with the best weights, as after `train`. ``on_epoch`` and
    ``should_stop`` run in this process (``should_stop`` about every ``poll_seconds``)."""
    cuda = config.device.startswith("cuda") or (
        config.device == "auto" and torch.cuda.is_available()
    )
    if cuda and torch.cuda.device_count() < processes:
        raise ValueError(
            f"{processes} training processes need as many GPUs; {torch.cuda.device_count()} "
            "are visible. Lower CROWDNET_TRAIN_PROCESSES."
        )
    context = mp.get_context("spawn")
    reports, stop = context.Queue(), context.Event()
    with tempfile.TemporaryDirectory(prefix="crowdnet-ddp-") as scratch:
        start, best = Path(scratch) / "start.pt", Path(scratch) / "best.pt"
        torch.save({k: v.detach().cpu() for k, v in backbone.net.state_dict().items()}, start)
        job = _Job(
            backbone=backbone.name,
            num_classes=backbone.net.head.out_features,  # type: ignore[arg-type]
            start=str(start),
            best=str(best),
            config=config,
            port=_free_port(),
            backend="nccl" if cuda else "gloo",
        )
        old_threads = os.environ.get("OMP_NUM_THREADS")
        if not cuda:  # share the cores between the ranks rather than oversubscribe them
            os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // processes))
        try:
            spawned = mp.start_processes(
                _rank_main,
                args=(processes, job, train_batches, val_batches, reports, stop),
                nprocs=processes,
                join=False,
                start_method="spawn",
            )
        finally:
            if old_threads is None:
                os.environ.pop("OMP_NUM_THREADS", None)
            else:
                os.environ["OMP_NUM_THREADS"] = old_threads
        outcome: tuple[str, Any] | None = None

        def drain() -> None:
            nonlocal outcome
            while True:
                try:
                    kind, value = reports.get_nowait()
                except queue_module.Empty:
                    return
                if kind == "epoch" and on_epoch is not None:
                    on_epoch(value)
                elif kind != "epoch":
                    outcome = (kind, value)

        try:
            while not spawned.join(timeout=poll_seconds):
                drain()
                if should_stop is not None and should_stop():
                    stop.set()
        except BaseException:
            stop.set()
            for process in spawned.processes:
                if process.is_alive():
                    process.terminate()
            raise
        drain()
        if outcome is None:
            raise RuntimeError("the training processes ended without a result")
        if outcome[0] == "cancelled":
            raise TrainingCancelled(outcome[1])
        backbone.net.load_state_dict(torch.load(best, weights_only=True))
        result: TrainResult = outcome[1]
        return result
