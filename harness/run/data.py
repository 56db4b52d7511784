"""CIFAR-10, offline first: load, verify, split, subsample, scale, fingerprint.

Sources, in order: ``--data PATH`` / ``BENCH_DATA`` (an ``.npz`` with x_train, y_train, x_test,
y_test; the official ``cifar-10-python.tar.gz``; or its extracted ``cifar-10-batches-py/``),
else ``keras.datasets.cifar10.load_data()`` (downloads when online). Official files are
md5-checked against the published sums *before* anything is unpickled.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import DataError

CLASS_NAMES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
NUM_CLASSES = len(CLASS_NAMES)
IMAGE_SHAPE = (32, 32, 3)
DATA_ENV = "BENCH_DATA"

# Published by the dataset's authors (and checked by torchvision's CIFAR10 loader).
ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
BATCH_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
}
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))


@dataclass(frozen=True)
class Dataset:
    """The raw CIFAR-10 arrays (uint8 images, int labels) and where they came from."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str

    @property
    def fingerprint(self) -> str:
        """sha256 over the four arrays (names, shapes, dtypes, bytes); 16 hex digits."""
        digest = hashlib.sha256()
        for name in ("x_train", "y_train", "x_test", "y_test"):
            array = np.ascontiguousarray(getattr(self, name))
            digest.update(f"{name}:{array.shape}:{array.dtype}".encode())
            digest.update(array.tobytes())
        return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Split:
    """Arrays ready to train on: float32 images in [0, 1] and int32 labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_validation: np.ndarray
    y_validation: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_md5(name: str, actual: str, expected: str) -> None:
    if actual != expected:
        raise DataError(
            f"{name}: md5 {actual} does not match the published {expected}; "
            "refusing to unpickle a file that failed its checksum"
        )


def _unpickle_batch(blob: bytes) -> tuple[np.ndarray, np.ndarray]:
    # Only reached after the md5 check above: these bytes are the published batch file.
    batch = pickle.loads(blob, encoding="bytes")  # noqa: S301
    images = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, np.asarray(batch[b"labels"], dtype=np.uint8)


def _from_batches(read: dict[str, bytes], source: str) -> Dataset:
    for name, blob in read.items():
        _check_md5(name, hashlib.md5(blob, usedforsecurity=False).hexdigest(), BATCH_MD5[name])
    parts = [_unpickle_batch(read[name]) for name in TRAIN_BATCHES]
    x_test, y_test = _unpickle_batch(read["test_batch"])
    return Dataset(
        x_train=np.concatenate([p[0] for p in parts]),
        y_train=np.concatenate([p[1] for p in parts]),
        x_test=x_test,
        y_test=y_test,
        source=source,
    )


def _load_archive(path: Path) -> Dataset:
    _check_md5(path.name, md5_of(path), ARCHIVE_MD5)
    read = {}
    with tarfile.open(path, "r:gz") as archive:
        for member in archive.getmembers():
            name = Path(member.name).name
            if member.isfile() and name in BATCH_MD5:
                read[name] = archive.extractfile(member).read()
    missing = sorted(set(BATCH_MD5) - set(read))
    if missing:
        raise DataError(f"{path}: archive lacks {', '.join(missing)}")
    return _from_batches(read, f"archive {path}")


def _load_directory(path: Path) -> Dataset:
    if (path / "cifar-10-batches-py").is_dir():
        path = path / "cifar-10-batches-py"
    missing = [name for name in BATCH_MD5 if not (path / name).is_file()]
    if missing:
        raise DataError(f"{path}: not a cifar-10-batches-py directory (missing {', '.join(missing)})")
    read = {name: (path / name).read_bytes() for name in BATCH_MD5}
    return _from_batches(read, f"directory {path}")


def _load_npz(path: Path) -> Dataset:
    import zipfile

    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):  # an .npy renamed: one array, not the four of an .npz
            raise DataError(
                f"{path}: a single .npy array {loaded.shape}, not an .npz with x_train, y_train, x_test, y_test"
            )
        with loaded as arrays:
            missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in arrays]
            if missing:
                raise DataError(f"{path}: .npz lacks {', '.join(missing)}")
            data = {k: arrays[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:  # truncated, bad CRC, bad header
        raise DataError(f"{path}: not a readable .npz ({type(error).__name__}: {error})") from None
    except MemoryError:  # a header claiming an array larger than this machine's memory
        raise DataError(f"{path}: an array in it claims more memory than this machine has; not CIFAR-10") from None
    return Dataset(**data, source=f"npz {path}")


def _pixels(x: np.ndarray, where: str) -> np.ndarray:
    """``x`` as uint8 pixels, or a ``DataError``: a cast never changes a value silently (float
    images scaled to [0, 1] would become all zeros, 300 would wrap to 44)."""
    if x.dtype == np.uint8:
        return x
    if x.dtype.kind not in "iuf":
        raise DataError(f"{where} has dtype {x.dtype}; expected uint8 pixels 0..255")
    if x.size == 0:
        return x.astype(np.uint8)
    low, high = x.min(), x.max()
    if x.dtype.kind == "f" and not (np.isfinite(low) and np.isfinite(high)):
        raise DataError(f"{where} has NaN or infinite pixels")
    if low < 0 or high > 255:
        raise DataError(f"{where} has pixels in [{low:g}, {high:g}]; expected 0..255")
    if x.dtype.kind == "f":
        if high <= 1.0:
            raise DataError(
                f"{where} is float in [{low:g}, {high:g}]: it looks already scaled to [0, 1]; "
                "give raw 0..255 pixels (each recipe rescales as its report did)"
            )
        for start in range(0, len(x), 4096):  # in chunks: no full-size float temporary
            chunk = x[start : start + 4096]
            if not np.array_equal(chunk, np.round(chunk)):
                raise DataError(f"{where} has non-integer pixel values; expected 0..255")
    return x.astype(np.uint8)


def _labels(y: np.ndarray, where: str) -> np.ndarray:
    """``y`` as int32 class indices 0..9, or a ``DataError`` (no silent truncation of 3.7 to 3)."""
    y = y.reshape(-1)
    if y.dtype.kind not in "iuf":
        raise DataError(f"{where} has dtype {y.dtype}; expected integer class indices 0..9")
    if y.dtype.kind == "f" and y.size and not np.array_equal(y, np.round(y)):
        raise DataError(f"{where} has non-integer labels; expected class indices 0..9 (not one-hot, not scores)")
    if y.size and (y.min() < 0 or y.max() >= NUM_CLASSES):
        raise DataError(f"{where} has labels outside 0..9")
    return y.astype(np.int32)


def _validate(data: Dataset) -> Dataset:
    """Check shapes, dtypes and ranges, and return the dataset as uint8 images and int32 labels."""
    checked = {}
    for split in ("train", "test"):
        x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
        if x.ndim != 4 or x.shape[1:] != IMAGE_SHAPE:
            raise DataError(f"{data.source}: x_{split} has shape {x.shape}, expected (N, 32, 32, 3)")
        if len(x) == 0:
            raise DataError(f"{data.source}: x_{split} has no images")
        if y.ndim == 2 and y.shape[1] == NUM_CLASSES and NUM_CLASSES != 1:
            raise DataError(f"{data.source}: y_{split} looks one-hot {y.shape}; expected class indices 0..9")
        if y.reshape(-1).shape[0] != len(x):
            raise DataError(f"{data.source}: {len(x)} x_{split} images but {y.size} labels")
        checked[f"x_{split}"] = _pixels(x, f"{data.source}: x_{split}")
        if checked[f"x_{split}"].max() <= 1:  # an integer image set with no pixel above 1 is blank
            raise DataError(
                f"{data.source}: x_{split} has only pixels 0 and 1: it looks scaled to [0, 1] and cast back to "
                "integers (every image nearly black); give raw 0..255 pixels"
            )
        checked[f"y_{split}"] = _labels(y, f"{data.source}: y_{split}")
    return Dataset(**checked, source=data.source)


def resolve_data_path(path: str | os.PathLike | None) -> Path | None:
    """The dataset path from the argument, else ``$BENCH_DATA``, else None (Keras download); absolute."""
    chosen = path if path else os.environ.get(DATA_ENV)
    return Path(chosen).expanduser().resolve() if chosen else None  # absolute: it is logged with each run


def load_cifar10(path: str | os.PathLike | None = None) -> Dataset:
    """Load CIFAR-10 from a local file/directory, or from Keras when none is given."""
    resolved = resolve_data_path(path)
    if resolved is None:
        from harness.environment import import_keras_quietly

        import_keras_quietly()  # without the backend's CUDA-probe lines on the terminal
        import keras

        try:
            (x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
        except Exception as error:  # noqa: BLE001  Keras raises a bare Exception when offline
            raise DataError(
                f"no local dataset given (--data PATH, ${DATA_ENV}, or [data] local_copies in the config) "
                f"and Keras could not download CIFAR-10: {error}"
            ) from None
        return _validate(Dataset(x_train, y_train, x_test, y_test, source="keras.datasets.cifar10"))
    if not resolved.exists():
        raise DataError(f"{resolved}: no such file or directory (set by --data or ${DATA_ENV})")
    if resolved.is_dir():
        return _validate(_load_directory(resolved))
    if not resolved.is_file():  # a FIFO or a device would block or stream forever
        raise DataError(f"{resolved}: not a regular file or directory")
    if resolved.name.endswith((".tar.gz", ".tgz")):
        return _validate(_load_archive(resolved))
    if resolved.suffix == ".npz":
        return _validate(_load_npz(resolved))
    raise DataError(f"{resolved}: unknown format; expected an .npz, cifar-10-python.tar.gz, or cifar-10-batches-py/")


def _take(indices: np.ndarray, labels: np.ndarray, size: int | None, seed: int, stratified: bool) -> np.ndarray:
    """A reproducible (stratified) subset of ``indices`` of the given size, original order kept."""
    if size is None or size >= len(indices):
        return indices
    from sklearn.model_selection import train_test_split

    kept, _ = train_test_split(
        indices,
        train_size=size,
        random_state=seed,
        stratify=labels[indices] if stratified else None,
    )
    return np.sort(kept)


def split_train_validation(
    labels: np.ndarray, validation_size: int, *, seed: int, stratified: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the train and validation parts of the 50,000 training images.

    Fixed by ``seed`` (the config's split seed, never the run seed): every recipe, seed and
    profile sees the same validation images.
    """
    from sklearn.model_selection import train_test_split

    if not 0 < validation_size < len(labels):
        raise DataError(f"validation_size must be between 1 and {len(labels) - 1}, got {validation_size}")
    train, validation = train_test_split(
        np.arange(len(labels)),
        test_size=validation_size,
        random_state=seed,
        stratify=labels if stratified else None,
    )
    return np.sort(train), np.sort(validation)


def split_indices(
    data: Dataset,
    *,
    validation_size: int,
    split_seed: int,
    stratified: bool = True,
    train_size: int | None = None,
    validation_subset: int | None = None,
    test_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The train, validation and test indices of a split (cheap: no image is touched). A split
    that cannot be made (a validation set as large as the data, fewer images than classes, a
    class with one image under stratification) is one ``DataError``: the sweep calls this
    before anything trains, so it fails once, not in every run."""
    try:
        train, validation = split_train_validation(
            data.y_train, validation_size, seed=split_seed, stratified=stratified
        )
        # A profile's budget the data cannot give would train on less than it says, silently.
        for field, size, available, what in (
            ("train_size", train_size, len(train), "training images left after the validation split"),
            ("validation_size", validation_subset, len(validation), "validation images"),
            ("test_size", test_size, len(data.y_test), "test images"),
        ):
            if size is not None and size > available:
                raise DataError(
                    f"{data.source}: the profile's {field} = {size:,} is more than the {available:,} {what}; "
                    "lower it, or leave it out to use them all"
                )
        train = _take(train, data.y_train, train_size, split_seed, stratified)
        validation = _take(validation, data.y_train, validation_subset, split_seed, stratified)
        test = _take(np.arange(len(data.y_test)), data.y_test, test_size, split_seed, stratified)
    except ValueError as error:  # scikit-learn's, e.g. "The least populated class in y has only 1 member"
        raise DataError(
            f"{data.source}: cannot split validation_size={validation_size}, train_size={train_size}, "
            f"validation subset={validation_subset}, test_size={test_size}: {error}"
        ) from None
    return train, validation, test


def prepare_split(data: Dataset, **options: Any) -> Split:
    """Split (``options``: those of ``split_indices``), subsample to a profile's budget and
    scale to float32 in [0, 1], once."""
    train, validation, test = split_indices(data, **options)

    def scaled(images: np.ndarray) -> np.ndarray:
        return images.astype(np.float32) / np.float32(255.0)

    return Split(
        x_train=scaled(data.x_train[train]),
        y_train=data.y_train[train],
        x_validation=scaled(data.x_train[validation]),
        y_validation=data.y_train[validation],
        x_test=scaled(data.x_test[test]),
        y_test=data.y_test[test],
    )


def synthetic_cifar10(train: int = 600, test: int = 200, *, seed: int = 0) -> Dataset:
    """Small CIFAR-shaped data with a learnable signal (class-dependent colour), for tests."""
    rng = np.random.default_rng(seed)

    def make(count: int) -> tuple[np.ndarray, np.ndarray]:
        labels = np.arange(count) % NUM_CLASSES
        rng.shuffle(labels)
        images = rng.integers(0, 96, size=(count, *IMAGE_SHAPE))
        images[..., 0] += labels[:, None, None] * 16
        images[..., 1] += (9 - labels[:, None, None]) * 12
        return np.clip(images, 0, 255).astype(np.uint8), labels.astype(np.uint8)

    x_train, y_train = make(train)
    x_test, y_test = make(test)
    return Dataset(x_train, y_train, x_test, y_test, source="synthetic")


def save_npz(data: Dataset, path: str | os.PathLike) -> Path:
    """Write a dataset in the ``.npz`` layout that ``load_cifar10`` reads."""
    path = Path(path)
    buffer = io.BytesIO()
    np.savez(buffer, x_train=data.x_train, y_train=data.y_train, x_test=data.x_test, y_test=data.y_test)
    path.write_bytes(buffer.getvalue())
    return path
