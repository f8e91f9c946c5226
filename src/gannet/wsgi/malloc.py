"""Keep glibc from handing request-body memory back to the kernel after every request.

A WSGI body is held until the app has read it: forty 256 KiB socket reads for a 10 MiB
upload. With glibc's defaults those blocks come from fresh mmaps or a heap that is trimmed
as soon as they are freed, so the next upload page-faults (and the kernel zeroes) every
page again: measured here, that cost more CPU than everything else in the upload path
(wsgi-upload-10m went from ~1,050 to ~2,600 MiB/s with the two settings below). Large
blocks are therefore served from the heap, and freed memory is kept for reuse up to twice
the body budget. Users who set MALLOC_MMAP_THRESHOLD_ or MALLOC_TRIM_THRESHOLD_ keep theirs.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

__all__ = ["keep_freed_memory"]

logger = logging.getLogger("gannet.error")

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # glibc's ceiling on 64-bit


def keep_freed_memory(retain: int) -> bool:
    """Tune glibc malloc; True when applied (Linux with glibc only)."""
    if not sys.platform.startswith("linux"):
        return False
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or "MALLOC_TRIM_THRESHOLD_" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc (musl has no mallopt)
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX) == 1
    ok = mallopt(_M_TRIM_THRESHOLD, max(retain, _MMAP_THRESHOLD_MAX)) == 1 and ok
    logger.debug("glibc malloc: large blocks from the heap, %d bytes kept on free: %s", retain, ok)
    return ok
