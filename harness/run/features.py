"""Cached backbone features for frozen-backbone transfer recipes: the backbone split from its head
(``frozen_parts``), its features of a split's arrays computed once (``backbone_features``).

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
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


FEATURE_BATCH = 128  # images per backbone forward pass when extracting features


def frozen_parts(architecture: str, kwargs: dict[str, Any], seed: int):
    """(backbone, head, weights id) for a builder that can be split at its frozen backbone (it
    takes ``part``), else None. A backbone built without pretrained weights (tests,
    ``--random-weights``) is drawn with a fixed seed, so it stands for one fixed set of weights
    that every seed shares, as real ones would."""
    import inspect

    import keras

    import architectures

    entry = architectures.get(architecture)
    if "part" not in inspect.signature(entry.builder).parameters:
        return None
    weights = kwargs.get("weights")
    if weights is None:
        keras.utils.set_random_seed(0)
    backbone = entry.build(part="features", **kwargs)
    keras.utils.set_random_seed(seed)
    head = entry.build(part="head", **kwargs)
    weights_id = "random-seed-0" if weights is None else _file_sha256(weights)
    return backbone, head, weights_id


def _file_sha256(path: str) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def backbone_features(backbone, weights_id: str, arrays: tuple[np.ndarray, ...], extra: dict[str, Any]) -> tuple:
    """Backbone features of each array, from the on-disk cache where present."""
    import hashlib
    import json

    def unnamed(value: Any) -> Any:  # layer names are auto-numbered per process: not identity
        if isinstance(value, dict):
            return {k: unnamed(v) for k, v in value.items() if k not in ("name", "inbound_nodes")}
        if isinstance(value, list):
            return [unnamed(v) for v in value]
        return value

    config = json.dumps(unnamed(backbone.get_config()), sort_keys=True, default=str)
    key = hashlib.sha256(config.encode()).hexdigest()[:12]
    feature_key = f"{backbone.name}-{key}"
    started = time.perf_counter()
    hits, out = 0, []
    for x in arrays:
        features, hit = cached_features(
            feature_key, weights_id, x, lambda a: backbone.predict(a, batch_size=FEATURE_BATCH, verbose=0)
        )
        hits += hit
        out.append(features)
    extra["feature_seconds"] = time.perf_counter() - started
    extra["feature_cache_hits"] = hits
    extra["feature_cache_misses"] = len(arrays) - hits
    return tuple(out)
