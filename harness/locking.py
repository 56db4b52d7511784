"""One file lock for every process that must not do a thing twice at once (create a store,
extract a backbone's features)."""

from __future__ import annotations

import contextlib
import fcntl
from pathlib import Path


@contextlib.contextmanager
def exclusive_lock(lock_file: Path):
    """Hold an exclusive ``flock`` on ``lock_file`` while inside, across processes. Where the
    lock file cannot be created (a read-only folder), go on without a lock."""
    try:
        handle = open(lock_file, "a")  # noqa: SIM115  closed below
    except OSError:
        yield
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        handle.close()  # closing releases the lock
