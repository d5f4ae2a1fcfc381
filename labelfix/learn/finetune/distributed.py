"""Finetune mode on several processes with DistributedDataParallel (``torchrun``).

Run it directly::

    torchrun --standalone --nproc_per_node 4 -m labelfix.learn.finetune.distributed --db labelfix.duckdb --method splc

or from Python with :func:`launch_distributed`, which starts the processes on this machine and waits. The backend is
NCCL when CUDA is available (one GPU per process, ``cuda:$LOCAL_RANK``) and gloo on CPU.

Only rank 0 opens the store (DuckDB allows one writer per file): it creates or reopens the run, reads
images and labels, and broadcasts them; every rank then runs the same
:func:`labelfix.learn.finetune.trainer.finetune_loop` on its shard of each batch (``DistributedSampler``;
``batch_size`` is the global batch, split evenly over the processes); rank 0 writes checkpoints,
per-epoch metrics, predictions and the final result.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, Optional, Sequence

import torch
import torch.distributed as dist

from labelfix.errors import LabelfixError
from labelfix.learn.config import TrainConfig
from labelfix.learn.finetune.runs import record_outcome, start_or_resume_run
from labelfix.learn.finetune.trainer import DistContext, finetune_loop, prepare_data
from labelfix.learn.validation import chosen_epoch_text, val_map_text
from labelfix.store.database import open_store
from labelfix.store.runs import finish_run, record_epoch


def _device_and_backend(config: TrainConfig, local_rank: int) -> tuple[torch.device, str]:
    if config.device == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu"), "gloo"
    torch.cuda.set_device(local_rank)  # NCCL collectives and all_gather_object use the current device
    return torch.device("cuda", local_rank), "nccl"


def run_worker(*, db: Path, config: TrainConfig, result_json: Optional[Path] = None) -> Optional[int]:
    """Body of one torchrun process; returns the run id on rank 0 and None elsewhere.

    Parameters
    ----------
    db : Path
        The store; opened by rank 0 only.
    config : TrainConfig
        As for :func:`labelfix.learn.finetune.trainer.train_finetune` (``resume`` / ``resume_run`` included).
    result_json : Path, optional
        Where rank 0 writes ``{"run_id": ..., "metrics": ...}`` (or ``{"error": ...}``) when done.
    """
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device, backend = _device_and_backend(config, local_rank)
    dist.init_process_group(backend=backend, timeout=timedelta(minutes=30))
    rank, world_size = dist.get_rank(), dist.get_world_size()
    store, run_id = None, None
    try:
        payload: list[Any] = [None]
        if rank == 0:
            try:
                store = open_store(db, create=False)
                run_id, config, directory = start_or_resume_run(store, config=config)
                payload = [{"run_id": run_id, "config": config.model_dump(mode="json"), "directory": str(directory),
                            "data": prepare_data(store)}]
            except Exception as error:  # any failure: tell the other ranks to stop, not wait in the broadcast
                message = error.message if isinstance(error, LabelfixError) else f"{type(error).__name__}: {error}"
                payload = [{"error": message}]
        dist.broadcast_object_list(payload, src=0)
        shared = payload[0]
        if "error" in shared:
            if rank == 0:
                _write_result(result_json, {"error": shared["error"]})
                if run_id is not None and store is not None:
                    finish_run(store, run_id=run_id, metrics={"error": shared["error"]}, status="failed")
            raise SystemExit(2)
        run_id, config = shared["run_id"], TrainConfig(**shared["config"])

        def on_epoch(epoch: int, metrics: dict[str, Any]) -> None:
            assert store is not None  # finetune_loop calls on_epoch on rank 0, the rank that opened the store
            record_epoch(store, run_id=run_id, epoch=epoch, metrics=metrics)
            print(f"epoch {epoch + 1}/{config.epochs}  loss {metrics['train_loss']:.4f}"
                  f"{val_map_text(metrics['val_map'])}  {metrics['seconds']:.1f}s", flush=True)

        ctx = DistContext(device, rank=rank, world_size=world_size)
        try:
            outcome = finetune_loop(shared["data"], config=config, ctx=ctx,
                                    checkpoint_dir=Path(shared["directory"]), on_epoch=on_epoch)
        except BaseException as error:  # the run stays resumable; rank 0 marks it failed
            if rank == 0:
                assert store is not None  # rank 0 opened it (an open failure ended above)
                finish_run(store, run_id=run_id, metrics={"error": f"{type(error).__name__}: {error}"},
                           status="failed")
                _write_result(result_json, {"run_id": run_id, "error": f"{type(error).__name__}: {error}"})
            raise
        if rank == 0:
            assert store is not None
            metrics = record_outcome(store, run_id=run_id, data=shared["data"], outcome=outcome)
            _write_result(result_json, {"run_id": run_id, "metrics": metrics})
            chosen = chosen_epoch_text(best_epoch=outcome.best_epoch, epochs_trained=len(outcome.history),
                                       val_map=metrics["val_map"])
            print(f"run {run_id}: {chosen}", flush=True)
        return run_id if rank == 0 else None
    finally:
        if store is not None:
            store.close()
        dist.destroy_process_group()


def _write_result(path: Optional[Path], result: dict[str, Any]) -> None:
    if path is not None:
        Path(path).write_text(json.dumps(result, default=str), encoding="utf-8")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def launch_distributed(*, db: str | Path, config: TrainConfig, nproc: int,
                       extra_env: Optional[dict[str, str]] = None) -> dict[str, Any]:
    """Run finetune mode on ``nproc`` local processes and wait for them.

    Starts the processes itself with the environment ``torchrun`` would give them (``RANK``,
    ``WORLD_SIZE``, ``MASTER_ADDR``/``MASTER_PORT`` on 127.0.0.1), which saves torchrun's agent process
    on one machine; if one process fails, the others are stopped. Use ``torchrun`` directly for
    several machines. The caller must not hold the store open (rank 0 opens it for writing).

    Parameters
    ----------
    db : str or Path
        The store file.
    config : TrainConfig
        The training config (its ``batch_size`` is the global batch).
    nproc : int
        Processes on this machine (one per GPU on a GPU machine).
    extra_env : dict, optional
        Environment variables added for the processes.

    Returns
    -------
    dict
        ``{"run_id": int, "metrics": dict}`` as rank 0 wrote it.

    Raises
    ------
    LabelfixError
        When a process fails; the message carries rank 0's error when it had one.
    """
    if nproc < 1:
        raise LabelfixError(f"--nproc must be at least 1, got {nproc}", fix="pass --nproc 2 or more")
    base_env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()),
                "WORLD_SIZE": str(nproc), "LOCAL_WORLD_SIZE": str(nproc)}
    # As torchrun does: without a limit every process would start one thread per core.
    base_env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    base_env.update(extra_env or {})
    with tempfile.TemporaryDirectory(prefix="labelfix-ddp-") as folder:
        config_path, result_path = Path(folder) / "config.json", Path(folder) / "result.json"
        # Only the fields the caller set: the method defaults then fill the rest on rank 0, as in one process.
        config_path.write_text(json.dumps(config.model_dump(mode="json", exclude_unset=True)), encoding="utf-8")
        command = [sys.executable, "-m", "labelfix.learn.finetune.distributed", "--db", str(db),
                   "--config-json", str(config_path), "--result-json", str(result_path)]
        processes = [subprocess.Popen(command, env={**base_env, "RANK": str(rank), "LOCAL_RANK": str(rank)})
                     for rank in range(nproc)]
        codes = _wait_all(processes)
        result = json.loads(result_path.read_text(encoding="utf-8")) if result_path.exists() else {}
    failed = [code for code in codes if code != 0]
    if failed or "error" in result:
        raise LabelfixError(f"distributed training failed (exit codes {codes})"
                            + (f": {result['error']}" if "error" in result else ""),
                            fix="see the processes' output above; an interrupted run continues with --resume")
    return result


def _wait_all(processes: list[subprocess.Popen]) -> list[int]:
    """Wait for every process; when one fails, stop the rest (they would wait in a collective until timeout)."""
    while any(process.poll() is None for process in processes):
        if any(process.poll() not in (None, 0) for process in processes):
            for process in processes:
                if process.poll() is None:
                    process.terminate()
            for process in processes:
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
            break
        time.sleep(0.2)
    return [process.wait() for process in processes]


def _parse(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m labelfix.learn.finetune.distributed",
                                     description="Finetune mode under torchrun (DistributedDataParallel).")
    parser.add_argument("--db", type=Path, required=True, help="store file (rank 0 opens it)")
    parser.add_argument("--config", type=Path, help="TOML config (TrainConfig fields)")
    parser.add_argument("--config-json", type=Path, help="JSON config, as launch_distributed writes it")
    parser.add_argument("--result-json", type=Path, help="where rank 0 writes the run id and metrics")
    parser.add_argument("--method")
    parser.add_argument("--backbone")
    parser.add_argument("--weights", type=Path)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int, help="global batch, split over the processes")
    parser.add_argument("--lr", type=float)
    parser.add_argument("--image-size", type=int)
    parser.add_argument("--num-workers", type=int)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--checkpoint-dir", type=Path)
    parser.add_argument("--resume", action="store_true", help="continue an interrupted finetune run")
    parser.add_argument("--resume-run", type=int, help="the run to resume (default: the latest unfinished)")
    return parser.parse_args(argv)


def _config_from(args: argparse.Namespace) -> TrainConfig:
    overrides = {"method": args.method, "backbone": args.backbone, "weights": args.weights, "epochs": args.epochs,
                 "batch_size": args.batch_size, "lr": args.lr, "image_size": args.image_size,
                 "num_workers": args.num_workers, "device": args.device, "checkpoint_dir": args.checkpoint_dir,
                 "resume": True if (args.resume or args.resume_run is not None) else None,
                 "resume_run": args.resume_run, "mode": "finetune"}
    overrides = {key: value for key, value in overrides.items() if value is not None}
    if args.config_json is not None:
        data = json.loads(args.config_json.read_text(encoding="utf-8"))
        return TrainConfig(**{**data, **overrides})
    if args.config is not None:
        return TrainConfig.from_file(args.config, **overrides)
    return TrainConfig(**overrides)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parse(argv)
    try:
        config = _config_from(args)
    except (LabelfixError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        run_worker(db=args.db, config=config, result_json=args.result_json)
    except LabelfixError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
