"""Two CPU processes under `accelerate launch` (torchrun + gloo) give byte-identical images to one process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from revival.evaluate.distributed import distributed_map, generate_distributed

PROMPTS = ["a star in a desert", "a box in a forest", "a star in a cage", "a ring in the snow",
           "a heart in a cage", "a moon in a city", "a pyramid in a desert"]
SEEDS = [11, 3, 5, 8, 0, 42, 7]
STEPS = 2

CHILD = textwrap.dedent(f"""
    import sys
    import numpy as np
    import torch
    from revival.evaluate.distributed import distributed_map, generate_distributed, process_state
    from revival.models import load_pipeline

    torch.set_num_threads(1)
    state = process_state()
    assert state.num_processes == 2, state
    pipe = load_pipeline(sys.argv[3])
    images = generate_distributed(pipe, {PROMPTS!r}, {SEEDS!r}, num_inference_steps={STEPS}, batch_size=64)
    one = generate_distributed(pipe, {PROMPTS[:1]!r}, {SEEDS[:1]!r}, num_inference_steps={STEPS})  # rank 1 idle
    ranks = distributed_map(lambda xs: [(x, state.process_index) for x in xs], list(range(5)))
    if state.is_main_process:
        np.save(sys.argv[1], np.concatenate([images, one]))
        np.save(sys.argv[2], np.array(ranks))
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_single_process_map_keeps_order():
    assert distributed_map(lambda xs: [x * 2 for x in xs], [3, 1, 2]) == [6, 2, 4]
    with pytest.raises(ValueError, match="results for"):
        distributed_map(lambda xs: xs[:1], [1, 2])


def test_two_processes_match_one(random_mini_folder, random_mini_pipeline, tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    out, ranks = tmp_path / "images.npy", tmp_path / "ranks.npy"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(_free_port()), str(script), str(out), str(ranks), str(random_mini_folder)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = generate_distributed(random_mini_pipeline, PROMPTS, SEEDS, num_inference_steps=STEPS)
    finally:
        torch.set_num_threads(threads)
    gathered, one = np.split(np.load(out), [len(PROMPTS)])
    assert gathered.shape == single.shape == (len(PROMPTS), 64, 64, 3)
    assert gathered.tobytes() == single.tobytes()
    assert one.tobytes() == single[:1].tobytes()
    # the work really was split: items 0-2 ran on rank 0, items 3-4 on rank 1, gathered in order
    assert np.load(ranks).tolist() == [[0, 0], [1, 0], [2, 0], [3, 1], [4, 1]]
