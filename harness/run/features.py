"""Cached backbone features for frozen-backbone transfer recipes.

A frozen backbone maps the same image to the same features in every seed and every recipe that
shares it, so computing them once is enough: only the head trains per seed. Features are cached
on disk per (backbone feature key, the exact pixel array, weights identity), where the feature
key names the backbone, input size and preprocessing. The array's own hash stands in for "data
fingerprint, split and profile subset", so two profiles or splits never share a wrong file.

Files live under ``$BENCH_CACHE`` (default ``~/.cache/cifar10-bench``)/features, one ``.npy``
per array, written atomically (temporary file, then rename) so a crash never leaves half a file
that a later run would trust. A cache that cannot be written (disk full, read-only) is a
warning, not a failed run: the features are used from memory. ``bench cache`` lists and clears
the files.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.locking import exclusive_lock


def cache_root() -> Path:
    return Path(os.environ.get("BENCH_CACHE", Path.home() / ".cache" / "cifar10-bench")) / "features"


def array_digest(x: np.ndarray) -> str:
    digest = hashlib.sha256()
    digest.update(str((x.shape, x.dtype.str)).encode())
    digest.update(np.ascontiguousarray(x).data)
    return digest.hexdigest()[:24]


def cache_path(feature_key: str, weights_id: str, x: np.ndarray) -> Path:
    name = hashlib.sha256(f"{feature_key}|{weights_id}".encode()).hexdigest()[:16]
    return cache_root() / f"{feature_key}-{name}-{array_digest(x)}.npy"


def _exclusive(path: Path):
    """An exclusive lock on ``path``.lock while inside: the seeds of one recipe running at once
    (``--jobs``) wait for the first to extract the features, then read them, instead of each
    extracting the same gigabytes."""
    with contextlib.suppress(OSError):  # a cache folder that cannot hold a lock file: no lock
        path.parent.mkdir(parents=True, exist_ok=True)
    return exclusive_lock(path.with_name(path.name + ".lock"))


def cached_features(
    feature_key: str, weights_id: str, x: np.ndarray, compute: Callable[[np.ndarray], np.ndarray]
) -> tuple[np.ndarray, bool]:
    """Features of ``x`` from the cache, or computed with ``compute`` and stored. Returns the
    features and whether they came from the cache. One process at a time per file."""
    path = cache_path(feature_key, weights_id, x)
    with _exclusive(path):
        return _read_or_compute(path, x, compute)


def _read_or_compute(path: Path, x: np.ndarray, compute: Callable[[np.ndarray], np.ndarray]) -> tuple[np.ndarray, bool]:
    if path.is_file():
        try:
            features = np.load(path, allow_pickle=False)
            if len(features) == len(x):
                return features, True
        except (OSError, ValueError):
            pass  # unreadable: recompute and overwrite
    features = np.asarray(compute(x), dtype=np.float32)
    try:
        _write_atomically(path, features)
    except OSError as error:
        print(
            f"warning: could not cache features ({features.nbytes / 1e6:,.0f} MB) at {path}: {error}; "
            "this run goes on with them in memory (set BENCH_CACHE to a disk with room)",
            file=sys.stderr,
        )
    return features, False


def _write_atomically(path: Path, features: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".npy.partial")
    try:
        with os.fdopen(handle, "wb") as stream:
            np.save(stream, features, allow_pickle=False)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class CacheEntry:
    """One cached feature array: which backbone set-up made it, its shape, its size on disk."""

    path: Path
    feature_key: str
    shape: tuple[int, ...] | None  # None: not a readable .npy (a leftover partial write)
    size: int
    modified: float


def cache_entries(match: str | None = None) -> list[CacheEntry]:
    """The files under the cache root, optionally only those whose feature key matches the glob
    ``match``; interrupted writes (``*.npy.partial``) are listed with no shape."""
    root = cache_root()
    if not root.is_dir():
        return []
    entries = []
    for path in sorted(root.iterdir()):
        if not path.is_file() or not (path.name.endswith(".npy") or path.name.endswith(".npy.partial")):
            continue
        # <feature key>-<16 hex: weights>-<24 hex: pixels>.npy, and the feature key itself has dashes.
        parts = path.name.split(".npy")[0].rsplit("-", 2)
        feature_key = parts[0] if len(parts) == 3 else path.name
        if match and not fnmatch.fnmatch(feature_key, match):
            continue
        stat = path.stat()
        entries.append(CacheEntry(path, feature_key, _npy_shape(path), stat.st_size, stat.st_mtime))
    return entries


def _npy_shape(path: Path) -> tuple[int, ...] | None:
    if not path.name.endswith(".npy"):
        return None
    try:
        return tuple(int(n) for n in np.load(path, mmap_mode="r", allow_pickle=False).shape)  # header only
    except (OSError, ValueError):
        return None


def clear_cache(match: str | None = None) -> list[CacheEntry]:
    """Delete the cached files (those whose feature key matches ``match``, or all); returns them."""
    removed = []
    for entry in cache_entries(match):
        entry.path.unlink(missing_ok=True)
        entry.path.with_name(entry.path.name + ".lock").unlink(missing_ok=True)
        removed.append(entry)
    return removed
