"""Split generation and scoring across processes started by `accelerate launch`, gather in order.

Under `accelerate launch --num_processes N` each process takes one contiguous slice of the work
(`PartialState.split_between_processes`) and the slices are gathered back in rank order, so the
result equals a single-process run: every image still comes from its own seeded generator.
In a plain `python` process these functions just run the work locally.

GPUs (one process per GPU; move the pipeline to `process_state().device` first):
    accelerate launch --multi_gpu --num_processes 4 my_script.py
CPU-only machine (accelerate's `--cpu` launcher starts one process unless MPI is set up; `--multi_gpu`
uses torchrun, and without CUDA the processes fall back to gloo on the CPU):
    accelerate launch --multi_gpu --num_processes 2 my_script.py   (or: torchrun --nproc_per_node 2 ...)
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np
import torch
from accelerate import PartialState
from accelerate.utils import gather_object

from revival.evaluate.generate import generate

T = TypeVar("T")
R = TypeVar("R")


def process_state() -> PartialState:
    """accelerate's process state; launched processes without CUDA talk over gloo (accelerate needs cpu=True).

    A launched process also destroys its process group at exit (`close_process_group`).
    """
    launched = int(os.environ.get("WORLD_SIZE", "1")) > 1
    state = PartialState(cpu=launched and not torch.cuda.is_available())
    if launched:
        atexit.register(close_process_group)  # registered twice is harmless: the second call finds none
    return state


def close_process_group() -> None:
    """Destroy the default process group while the interpreter is still whole: left to finalization, gloo's
    worker threads can abort the process ("terminate called without an active exception", exit -6) after
    the work is done (pytorch/pytorch#190489)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def distributed_map(fn: Callable[[list[T]], Sequence[R]], items: Sequence[T],
                    state: PartialState | None = None) -> list[R]:
    """`fn` over contiguous slices of `items`, one per process; every process gets all results in order.

    `fn` takes a list of items and returns one result per item (so empty slices work).
    """
    state = state or process_state()
    with state.split_between_processes(list(items)) as local:
        out = list(fn(list(local)))
    if len(out) != len(local):
        raise ValueError(f"fn returned {len(out)} results for {len(local)} items")
    return gather_object(out) if state.num_processes > 1 else out


def generate_distributed(
    pipe,
    prompts: Sequence[str],
    seeds: Sequence[int],
    num_inference_steps: int = 25,
    guidance_scale: float = 4.0,
    batch_size: int = 64,
    progress: bool = False,
    state: PartialState | None = None,
    height: int | None = None,
    width: int | None = None,
) -> np.ndarray:
    """`generate` split across the launched processes; images (N, H, W, 3) uint8 on every process."""
    if len(prompts) != len(seeds):
        raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
    state = state or process_state()
    if state.num_processes == 1:
        return generate(pipe, prompts, seeds, num_inference_steps, guidance_scale, batch_size, progress,
                        height=height, width=width)

    def run(pairs: list[tuple[str, int]]) -> list[np.ndarray]:
        if not pairs:
            return []
        images = generate(pipe, [p for p, _ in pairs], [s for _, s in pairs], num_inference_steps,
                          guidance_scale, batch_size, progress and state.is_main_process, height=height, width=width)
        return list(images)

    images = distributed_map(run, list(zip(prompts, seeds, strict=True)), state)
    return np.stack(images) if images else np.zeros((0, 1, 1, 3), np.uint8)
