"""Cached backbone features for frozen-backbone transfer recipes.

A frozen backbone maps the same image to the same features in every seed and every recipe that
shares it, so computing them once is enough: only the head trains per seed. Features are cached
on disk per (backbone feature key, the exact pixel array, weights identity), where the feature
key names the backbone, input size and preprocessing. The array's own hash stands in for "data
fingerprint, split and profile subset", so two profiles or splits never share a wrong file.

Files live under ``$BENCH_CACHE`` (default ``~/.cache/cifar10-bench``)/features, one ``.npy``
per array, written atomically (temporary file, then rename) so a crash never leaves half a file
that a later run would trust.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np


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


def cached_features(
    feature_key: str, weights_id: str, x: np.ndarray, compute: Callable[[np.ndarray], np.ndarray]
) -> tuple[np.ndarray, bool]:
    """Features of ``x`` from the cache, or computed with ``compute`` and stored. Returns the
    features and whether they came from the cache."""
    path = cache_path(feature_key, weights_id, x)
    if path.is_file():
        try:
            features = np.load(path, allow_pickle=False)
            if len(features) == len(x):
                return features, True
        except (OSError, ValueError):
            pass  # unreadable: recompute and overwrite
    features = np.asarray(compute(x), dtype=np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".npy.partial")
    try:
        with os.fdopen(handle, "wb") as stream:
            np.save(stream, features, allow_pickle=False)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return features, False
