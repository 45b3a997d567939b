"""One torch thread for the tracker's small work around the network, then the caller's count back."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run the block on one torch thread and restore the caller's thread count after it.

    For work too small to gain from threads: the template kernels, box decoding and the
    online filter's fit (convolutions of a few MFLOP), loading the weights and exporting the
    ONNX graphs. Measured on this project's 2-core machine while a niced job kept both cores
    busy: a 4 MFLOP convolution took 0.3 ms on one thread and 30 ms on two (the second thread
    waits for a core), so the first online fit took 0.96 s instead of 0.01 s.
    """
    before = torch.get_num_threads()
    if before == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
