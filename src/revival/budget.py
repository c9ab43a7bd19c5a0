"""Memory estimates that bound image counts and batch sizes before any work starts.

A request that cannot fit (`generate -n 1000000000`) is refused in a second with one line instead
of allocating until the kernel kills the process. The estimate counts only what certainly has to
be held: the uint8 images kept (twice, while the batches are joined), the grid drawn from them and
one batch of float32 images in flight (the denoiser's activations come on top), so it never
refuses a request that could work.
"""

from __future__ import annotations

import os

from revival.errors import RevivalError

PER_IMAGE_OVERHEAD = 100  # bytes of Python bookkeeping per image: prompt and seed list entries, a generator
BATCH_COPIES = 4  # float32 copies of a batch alive at once while sampling (latents, noise, guidance halves)
GRID_PAD = 2


def available_bytes() -> int:
    """Memory the system can give this process now (MemAvailable), or its free physical memory."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def human(n: float) -> str:
    """Bytes as a short human figure (e.g. 23.7 GB)."""
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def images_bytes(n: int, size: tuple[int, int]) -> int:
    """Bytes to hold `n` uint8 images of `size` (h, w)."""
    h, w = size
    return n * (2 * h * w * 3 + PER_IMAGE_OVERHEAD)


def grid_bytes(n: int, size: tuple[int, int], scale: int) -> int:
    """Bytes to draw a grid of `n` images of `size` enlarged `scale` times (array, image and the enlarged copy)."""
    h, w = size
    return n * (h + GRID_PAD) * (w + GRID_PAD) * 3 * (2 + scale**2)


def batch_bytes(batch: int, size: tuple[int, int]) -> int:
    """Bytes of the float32 images of one batch in flight."""
    h, w = size
    return batch * h * w * 3 * 4 * BATCH_COPIES


def check_images(n: int, batch: int, size: tuple[int, int], grids: tuple[tuple[int, int], ...] = (),
                 n_value: int | None = None, n_option: str = "-n") -> None:
    """One-line error naming `n_option` or --batch-size when the images they ask for cannot fit in memory.

    `n`: images generated in all (for an `n_option` of `n_value`, default `n`); `grids`:
    (images, scale) of each grid drawn.
    """
    avail = available_bytes()
    kept = images_bytes(n, size) + sum(grid_bytes(k, size, scale) for k, scale in grids)
    working = batch_bytes(min(batch, n), size)
    if kept + working <= avail:
        return
    h, w = size
    if kept + batch_bytes(1, size) > avail:
        value = n if n_value is None else n_value
        raise RevivalError(f"{n_option} {value}: {n} images of {h}x{w} need about {human(kept)} of memory, more "
                           f"than the {human(avail)} available; ask for fewer images")
    raise RevivalError(f"--batch-size {batch}: a batch of {min(batch, n)} images of {h}x{w} needs about "
                       f"{human(working)} of memory, more than the {human(avail - kept)} left; use a smaller batch")
