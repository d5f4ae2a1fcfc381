"""Finetune-mode training throughput (images/s): labelfix's step function against a bare torch loop.

For each backbone and image size, the same architecture (random init, a linear classifier on the
pooled features) is trained on synthetic batches held in pinned host memory, twice, interleaved:

* ``bare``: the minimal loop a user would write: copy, bf16 autocast forward, BCE, backward, AdamW.
* ``labelfix``: :class:`labelfix.learn.finetune.step.TrainStep` as finetune mode runs it: the same plus a
  partial-label loss over label states, the OneCycle schedule and the EMA of the weights.

Each measurement runs warm-up steps first, then ``--repeats`` timed windows of ``--iters`` steps
bracketed by ``torch.cuda.synchronize``; the median window counts. The target is labelfix at
>= 90 % of the bare loop's images/s.

Examples
--------
On a GPU machine (the reported numbers)::

    python -m labelfix.bench.speed.gpu_throughput --out benchmarks/results/gpu_throughput.json

Anywhere, a quick check that the script works (tiny sizes, a few steps)::

    python -m labelfix.bench.speed.gpu_throughput --quick --device cpu
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch
from torch import nn

from labelfix.learn.backbones import build_backbone
from labelfix.learn.finetune.step import FinetuneModel, ModelEma, TrainStep
from labelfix.learn.losses import build_loss

TARGET_RATIO = 0.9


def _model(name: str, num_classes: int, device: torch.device, channels_last: bool) -> nn.Module:
    torch.manual_seed(0)  # both loops start from the same weights
    backbone = build_backbone(name, weights=None)
    model = FinetuneModel(backbone.model, dim=backbone.dim, num_classes=num_classes)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    # torch takes a device and a memory format in one call; its type stubs list them as separate overloads.
    return model.to(device, memory_format=memory_format).train()  # type: ignore[call-overload]


def _batches(*, count: int, batch_size: int, image_size: int, num_classes: int,
             pin: bool) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """A few distinct synthetic batches (images, label states in {-1, 0, 1}, indices) in host memory."""
    generator = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(count):
        images = torch.randn(batch_size, 3, image_size, image_size, generator=generator)
        states = torch.randint(-1, 2, (batch_size, num_classes), generator=generator, dtype=torch.int8)
        index = torch.arange(batch_size)
        batches.append((images.pin_memory(), states.pin_memory(), index) if pin else (images, states, index))
    return batches


def bare_step_fn(model: nn.Module, *, device: torch.device, bf16: bool,
                 channels_last: bool, lr: float) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    """The reference: what a plain PyTorch training loop does per step."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    criterion = nn.BCEWithLogitsLoss()
    memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def step(images: torch.Tensor, states: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        images = images.to(device, non_blocking=True, memory_format=memory_format)
        targets = states.to(device, non_blocking=True).clamp(min=0).float()
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(images)
        loss = criterion(logits.float(), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step


def labelfix_step_fn(model: nn.Module, *, device: torch.device, bf16: bool, channels_last: bool, lr: float,
                     num_classes: int, total_steps: int, method: str, ema_decay: Optional[float]) -> TrainStep:
    """finetune mode's step: partial-label loss, AdamW + OneCycle, EMA."""
    loss = build_loss(method, num_classes=num_classes).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=total_steps, pct_start=0.2)
    ema = ModelEma(model, decay=ema_decay) if ema_decay else None
    return TrainStep(model=model, loss=loss, optimizer=optimizer, device=device, bf16=bf16,
                     channels_last=channels_last, scheduler=scheduler, ema=ema)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _run_window(step: Callable, batches: list, steps: int, device: torch.device, offset: int) -> float:
    """Seconds for ``steps`` steps, the device drained before and after."""
    _sync(device)
    started = time.perf_counter()
    loss = None
    for i in range(steps):
        loss = step(*batches[(offset + i) % len(batches)])
    _sync(device)
    elapsed = time.perf_counter() - started
    if loss is not None and not torch.isfinite(loss).item():
        raise RuntimeError("the loss became non-finite during the benchmark")
    return elapsed


def measure(*, name: str, image_size: int, batch_size: int, args: argparse.Namespace,
            device: torch.device) -> dict[str, Any]:
    """Images/s of both loops for one (model, size), interleaved window by window."""
    bf16, channels_last = not args.no_bf16, not args.no_channels_last
    total_steps = args.warmup + args.iters * args.repeats + 1
    batches = _batches(count=4, batch_size=batch_size, image_size=image_size, num_classes=args.num_classes,
                       pin=device.type == "cuda")
    steps: dict[str, Callable[..., torch.Tensor]] = {
        "bare": bare_step_fn(_model(name, args.num_classes, device, channels_last), device=device, bf16=bf16,
                             channels_last=channels_last, lr=args.lr),
        "labelfix": labelfix_step_fn(_model(name, args.num_classes, device, channels_last), device=device,
                                     bf16=bf16, channels_last=channels_last, lr=args.lr,
                                     num_classes=args.num_classes, total_steps=total_steps, method=args.method,
                                     ema_decay=args.ema_decay),
    }
    for step in steps.values():  # warm-up: cuDNN autotuning, allocator, lazy inits
        _run_window(step, batches, args.warmup, device, 0)
    seconds: dict[str, list[float]] = {key: [] for key in steps}
    for repeat in range(args.repeats):
        order = list(steps) if repeat % 2 == 0 else list(reversed(steps))  # cancel drift (clocks, heat)
        for key in order:
            seconds[key].append(_run_window(steps[key], batches, args.iters, device, repeat))
    rates = {key: batch_size * args.iters / statistics.median(values) for key, values in seconds.items()}
    row = {"model": name, "image_size": image_size, "batch_size": batch_size,
           "bare_images_per_s": round(rates["bare"], 2), "labelfix_images_per_s": round(rates["labelfix"], 2),
           "ratio": round(rates["labelfix"] / rates["bare"], 4),
           "bare_window_s": [round(s, 4) for s in seconds["bare"]],
           "labelfix_window_s": [round(s, 4) for s in seconds["labelfix"]]}
    row["target_met"] = row["ratio"] >= TARGET_RATIO
    if device.type == "cuda":
        row["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    del steps, batches
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    return row


def _parse(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["resnet50", "mobilenet_v2"],
                        help="torchvision backbones (random init)")
    parser.add_argument("--sizes", nargs="+", type=int, default=[224, 448], help="image sides in pixels")
    parser.add_argument("--batch-size", type=int, default=128,
                        help="batch at 224 px; other sizes scale it by area (448 px: a quarter)")
    parser.add_argument("--num-classes", type=int, default=80)
    parser.add_argument("--warmup", type=int, default=15, help="untimed steps per loop")
    parser.add_argument("--iters", type=int, default=30, help="steps per timed window")
    parser.add_argument("--repeats", type=int, default=5, help="timed windows per loop (median counts)")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--method", default="an", help="labelfix loss of the labelfix loop")
    parser.add_argument("--ema-decay", type=float, default=0.9997, help="0 disables the EMA")
    parser.add_argument("--no-bf16", action="store_true", help="train in float32")
    parser.add_argument("--no-channels-last", action="store_true")
    parser.add_argument("--device", default="auto", help="auto, cuda, cuda:1 or cpu")
    parser.add_argument("--quick", action="store_true",
                        help="tiny run to check the script: 32/64 px, batch 4, a few steps (float32 on CPU)")
    parser.add_argument("--out", type=Path, help="write the JSON here (it is printed too)")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.batch_size, args.warmup, args.iters, args.repeats = [32, 64], 4, 1, 2, 2
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parse(argv)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # both loops; fixed shapes, so autotuning pays off
    elif args.quick:
        args.no_bf16 = True  # bf16 convolutions on CPU are emulated and slow; --quick only checks the script
    rows = []
    for name in args.models:
        for size in args.sizes:
            batch_size = max(1, round(args.batch_size * (224 / size) ** 2)) if not args.quick else args.batch_size
            row = measure(name=name, image_size=size, batch_size=batch_size, args=args, device=device)
            rows.append(row)
            print(f"{name:>14} {size:4d}px batch {batch_size:4d}: bare {row['bare_images_per_s']:9.1f} img/s  "
                  f"labelfix {row['labelfix_images_per_s']:9.1f} img/s  ratio {row['ratio']:.3f}"
                  f"{'' if row['target_met'] else '  (below target)'}", file=sys.stderr, flush=True)
    report = {
        "benchmark": "finetune training throughput, labelfix TrainStep vs bare torch loop",
        "command": "python -m labelfix.bench.speed.gpu_throughput " + " ".join(sys.argv[1:] if argv is None else argv),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__, "cuda": torch.version.cuda,
        "settings": {"bf16": not args.no_bf16, "channels_last": not args.no_channels_last, "method": args.method,
                     "ema_decay": args.ema_decay, "warmup": args.warmup, "iters": args.iters,
                     "repeats": args.repeats, "num_classes": args.num_classes, "weights": "random init"},
        "target_ratio": TARGET_RATIO, "results": rows,
        "all_targets_met": all(row["target_met"] for row in rows)}
    text = json.dumps(report, indent=2)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
