"""How a web worker's C heap holds argon2's memory (issue 17, P5).

Each answer check asks the C allocator for one 19 MiB block (argon2's ``m``). glibc gives
every thread that allocates while another holds the heap lock its own arena, and an
arena keeps its freed big block for the next check in that thread: a gunicorn worker
whose four threads each ran a check held four blocks (about 76 MiB) for good, though
one check at a time ran. With a single arena the threads reuse one freed block.

Capping the arenas costs no page faults (blocks stay mapped and reused, unlike a fixed
mmap threshold or ``malloc_trim``, which make every check fault its 19 MiB in again);
Python's own small objects come from its own allocator, under the GIL, so the one
arena's lock is rarely contended. Set in code, first thing when the package is imported
(before any import starts a thread: an arena, once made, stays), not by an environment
variable, so an operator's own gunicorn gets it too, with or without ``--preload``.
"""

from __future__ import annotations

import ctypes

#: glibc's mallopt parameter for the most arenas (malloc.h); musl has no arenas and ignores it.
M_ARENA_MAX = -8


def one_malloc_arena() -> bool:
    """Make this process's threads share one malloc arena; whether the C library agreed."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not a C library with mallopt (Windows, some macOS builds)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(M_ARENA_MAX, 1))
