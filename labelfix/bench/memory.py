"""Peak memory of a block of code, for the benchmark's cost columns."""

from __future__ import annotations

import gc
import math
import threading
from typing import Optional


def _status_kb(field_name: str) -> Optional[int]:
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class PeakMemory:
    """Peak resident-set-size (RSS) increase of this process during a block, in MB.

    ``peak_mb`` = highest RSS during the block minus RSS when it started: what running the method
    cost on top of what the process already held (the cached embeddings, earlier methods'
    allocator caches). It counts numpy, PyTorch and DuckDB memory alike. On Linux the kernel's
    high-water mark (VmHWM) is reset through ``/proc/self/clear_refs`` before the block and read
    after it (exact); elsewhere RSS is sampled every 10 ms with psutil (``method`` says which).
    """

    def __init__(self) -> None:
        self.peak_mb = math.nan
        self.method = ""
        self._start_kb = 0
        self._sampler: Optional[threading.Thread] = None
        self._stop = threading.Event()
        self._max_kb = 0

    def __enter__(self) -> "PeakMemory":
        gc.collect()
        start = _status_kb("VmRSS")
        if start is not None and _reset_high_water_mark():
            self._start_kb, self.method = start, "VmHWM (reset via /proc/self/clear_refs)"
            return self
        import psutil

        process = psutil.Process()
        self._start_kb = self._max_kb = process.memory_info().rss // 1024
        self.method = "RSS sampled every 10 ms (psutil)"

        def sample() -> None:
            while not self._stop.wait(0.01):
                self._max_kb = max(self._max_kb, process.memory_info().rss // 1024)

        self._sampler = threading.Thread(target=sample, daemon=True)
        self._sampler.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._sampler is not None:
            self._stop.set()
            self._sampler.join()
            peak_kb = self._max_kb
        else:
            peak_kb = _status_kb("VmHWM") or self._start_kb
        self.peak_mb = max(peak_kb - self._start_kb, 0) / 1024.0


def _reset_high_water_mark() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


__all__ = ["PeakMemory"]
