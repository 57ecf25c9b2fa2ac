"""One BLAS thread per worker process: the workers are the parallelism (threaded BLAS made the
extractors 1.5-2x slower in CPU time).

Workers fork from a forkserver that has numpy (and its OpenBLAS) loaded already, so the
``OPENBLAS_NUM_THREADS`` they get in their environment comes too late for the library that is
loaded: it is set through OpenBLAS's own call as well (the same thing threadpoolctl does).
"""

from __future__ import annotations

import contextlib
import ctypes

#: the thread variables a worker's environment gets unless the user set them
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

# numpy >= 2 wheels (scipy-openblas), numpy 1.x wheels (64-bit interface), distribution builds
_SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
            "openblas_set_num_threads64_", "openblas_set_num_threads")


def limit_blas_threads(threads: int) -> int:
    """Set every loaded OpenBLAS to ``threads`` threads; returns how many libraries were set."""
    try:
        with open("/proc/self/maps", encoding="ascii", errors="replace") as fh:
            libs = {line.split()[-1] for line in fh if "openblas" in line.lower() and ".so" in line}
    except OSError:
        return 0
    done = 0
    for path in sorted(libs):
        with contextlib.suppress(OSError):
            lib = ctypes.CDLL(path)  # already loaded: the same handle
            for name in _SETTERS:
                setter = getattr(lib, name, None)
                if setter is not None:
                    setter(ctypes.c_int(threads))
                    done += 1
                    break
    return done
