"""Loading, verification, split determinism and stratification of CIFAR-10."""

from __future__ import annotations

import pickle
import tarfile

import numpy as np
import pytest

from harness.run import data as data_module
from harness.run.data import (
    DataError,
    load_cifar10,
    prepare_split,
    split_indices,
    split_train_validation,
    synthetic_cifar10,
)
from tests.conftest import REAL_DATA


def test_npz_round_trip_and_fingerprint(synthetic_npz):
    loaded = load_cifar10(synthetic_npz)
    again = load_cifar10(synthetic_npz)
    assert loaded.x_train.shape == (400, 32, 32, 3) and loaded.x_train.dtype == np.uint8
    assert loaded.y_train.dtype == np.int32 and loaded.y_test.shape == (150,)
    assert loaded.fingerprint == again.fingerprint
    other = synthetic_cifar10(train=400, test=150, seed=4)
    assert other.fingerprint != loaded.fingerprint


def test_environment_variable_is_used(synthetic_npz, monkeypatch):
    monkeypatch.setenv("BENCH_DATA", str(synthetic_npz))
    assert load_cifar10().source.endswith("synthetic.npz")


def test_split_is_deterministic_stratified_and_disjoint():
    labels = np.repeat(np.arange(10), 500)
    train, validation = split_train_validation(labels, 1000, seed=5)
    train2, validation2 = split_train_validation(labels, 1000, seed=5)
    assert np.array_equal(train, train2) and np.array_equal(validation, validation2)
    assert len(train) == 4000 and len(validation) == 1000
    assert not set(train) & set(validation)
    assert np.all(np.bincount(labels[validation]) == 100)
    _, other = split_train_validation(labels, 1000, seed=6)
    assert not np.array_equal(validation, other)


def test_prepare_split_scales_once_and_subsamples_stratified():
    data = synthetic_cifar10(train=1000, test=300)
    split = prepare_split(data, validation_size=200, split_seed=1, train_size=500, validation_subset=100, test_size=200)
    assert split.x_train.dtype == np.float32 and 0.0 <= split.x_train.min() and split.x_train.max() <= 1.0
    assert (
        split.x_train.shape == (500, 32, 32, 3) and split.x_validation.shape[0] == 100 and split.x_test.shape[0] == 200
    )
    assert np.all(np.bincount(split.y_train, minlength=10) == 50)
    expected = data.x_train.astype(np.float32) / 255
    assert any(np.array_equal(split.x_train[0], image) for image in expected[:600])


@pytest.mark.parametrize(
    ("payload", "message"),
    [(b"not a zip", "not a readable .npz"), (None, "lacks y_test")],
)
def test_bad_npz(tmp_path, payload, message):
    path = tmp_path / "bad.npz"
    if payload is None:
        np.savez(path, x_train=np.zeros((1, 32, 32, 3), np.uint8), y_train=np.zeros(1), x_test=np.zeros((1, 32, 32, 3)))
    else:
        path.write_bytes(payload)
    with pytest.raises(DataError, match=message):
        load_cifar10(path)


def test_wrong_shape_is_rejected(tmp_path):
    path = tmp_path / "shape.npz"
    np.savez(
        path,
        x_train=np.zeros((2, 28, 28), np.uint8),
        y_train=np.zeros(2),
        x_test=np.zeros((1, 28, 28)),
        y_test=np.zeros(1),
    )
    with pytest.raises(DataError, match="expected"):
        load_cifar10(path)


def _npz_with(tmp_path, **overrides):
    data = synthetic_cifar10(train=20, test=10, seed=0)
    arrays = {"x_train": data.x_train, "y_train": data.y_train, "x_test": data.x_test, "y_test": data.y_test}
    arrays.update(overrides)
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: {"x_train": d.x_train.astype(np.float32) / 255}, r"already scaled to \[0, 1\]"),
        (lambda d: {"x_train": d.x_train.astype(np.int64) + 300}, r"pixels in \[.*\]; expected 0..255"),
        (lambda d: {"x_test": d.x_test.astype(np.float32) + 0.5}, "non-integer pixel values"),
        (lambda d: {"x_test": np.full(d.x_test.shape, np.nan, np.float32)}, "NaN or infinite"),
        (lambda d: {"y_train": d.y_train.astype(np.float32) + 0.3}, "non-integer labels"),
        (lambda d: {"y_test": np.eye(10)[d.y_test]}, "one-hot"),
        (lambda d: {"y_test": d.y_test.astype(str)}, "expected integer class indices"),
        (lambda d: {"x_test": d.x_test[:0], "y_test": d.y_test[:0]}, "has no images"),
    ],
)
def test_data_of_the_wrong_dtype_or_range_is_refused_not_cast(tmp_path, change, message):
    """A cast must never change a value silently: float [0, 1] images would become all-black
    uint8, 300 would wrap to 44, a label 3.7 would become 3."""
    path = _npz_with(tmp_path, **change(synthetic_cifar10(train=20, test=10, seed=0)))
    with pytest.raises(DataError, match=message):
        load_cifar10(path)


def test_lossless_dtypes_are_accepted(tmp_path):
    """Integer-valued float or int64 pixels and float labels with integer values load exactly."""
    data = synthetic_cifar10(train=20, test=10, seed=0)
    path = _npz_with(tmp_path, x_train=data.x_train.astype(np.float64), y_train=data.y_train.astype(np.float32))
    loaded = load_cifar10(path)
    assert loaded.x_train.dtype == np.uint8 and np.array_equal(loaded.x_train, data.x_train)
    assert loaded.y_train.dtype == np.int32 and np.array_equal(loaded.y_train, data.y_train)


def test_truncated_renamed_and_huge_npz_are_one_line_errors(tmp_path):
    """A truncated download, an .npy renamed .npz, and a header claiming 3 TB: each a DataError
    naming the file (one line in the CLI), never a traceback or an attempt to allocate."""
    import io
    import zipfile

    from numpy.lib import format as npy_format

    whole = _npz_with(tmp_path)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(whole.read_bytes()[:2000])
    renamed = tmp_path / "renamed.npz"
    with renamed.open("wb") as handle:
        np.save(handle, np.zeros((2, 32, 32, 3), np.uint8))
    header = io.BytesIO()
    npy_format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": (10**6, 10**6, 3)})
    huge = tmp_path / "huge.npz"
    with zipfile.ZipFile(huge, "w") as archive:
        for key in ("x_train", "y_train", "x_test", "y_test"):
            archive.writestr(f"{key}.npy", header.getvalue())
    for path, message in (
        (truncated, "not a readable .npz"),
        (renamed, "a single .npy array"),
        (huge, "claims more memory than this machine has"),
    ):
        with pytest.raises(DataError, match=message):
            load_cifar10(path)


def test_a_fifo_is_refused_without_blocking(tmp_path):
    import os

    fifo = tmp_path / "data.npz"
    os.mkfifo(fifo)
    with pytest.raises(DataError, match="not a regular file"):
        load_cifar10(fifo)


def test_missing_path(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_cifar10(tmp_path / "absent.npz")


def _refuse_unpickling(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("unpickled a file that failed its checksum")

    monkeypatch.setattr(pickle, "loads", refuse)


def test_tampered_batches_directory_is_never_unpickled(tmp_path, monkeypatch):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in data_module.BATCH_MD5:
        (folder / name).write_bytes(pickle.dumps({b"data": [], b"labels": []}))
    _refuse_unpickling(monkeypatch)
    with pytest.raises(DataError, match="does not match the published"):
        load_cifar10(tmp_path)


def test_tampered_archive_is_never_unpickled(tmp_path, monkeypatch):
    payload = tmp_path / "data_batch_1"
    payload.write_bytes(b"evil")
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(payload, arcname="cifar-10-batches-py/data_batch_1")
    _refuse_unpickling(monkeypatch)
    with pytest.raises(DataError, match="md5 .* does not match the published c58f30108f718f92721af3b95e74349a"):
        load_cifar10(archive)


@pytest.mark.skipif(not REAL_DATA.exists(), reason=f"{REAL_DATA} not present")
def test_real_dataset_is_cifar10():
    data = load_cifar10(REAL_DATA)
    assert data.x_train.shape == (50000, 32, 32, 3) and data.x_test.shape == (10000, 32, 32, 3)
    assert np.all(np.bincount(data.y_train) == 5000) and np.all(np.bincount(data.y_test) == 1000)
    # Published per-channel training mean ×255 (see shared/data/SOURCE.md)
    assert np.allclose(data.x_train.reshape(-1, 3).mean(axis=0), [125.30691805, 122.95039414, 113.86538318])


def test_offline_without_local_data_is_a_clear_error(monkeypatch):
    import keras

    def offline():
        raise Exception("URL fetch failure on https://example.invalid: Name or service not known")

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", offline)
    with pytest.raises(
        DataError, match=r"no local dataset given \(--data PATH, \$BENCH_DATA, or \[data\] local_copies"
    ):
        load_cifar10(None)


@pytest.mark.parametrize(
    ("sizes", "message"),
    [
        ({"validation_size": 1000}, "validation_size must be between 1 and 999"),
        ({"validation_size": 100, "train_size": 5}, "cannot split"),  # fewer images than classes
        ({"validation_size": 100, "test_size": 3}, "cannot split"),
    ],
)
def test_a_split_that_cannot_be_made_is_one_error_before_training(sizes, message):
    data = synthetic_cifar10(train=1000, test=300)
    with pytest.raises(DataError, match=message):
        split_indices(data, split_seed=1, **sizes)


def test_a_class_with_one_image_cannot_be_stratified():
    data = synthetic_cifar10(train=200, test=100)
    labels = data.y_train.copy()
    labels[labels == 3] = 4
    labels[0] = 3  # class 3 now has one image
    lonely = type(data)(data.x_train, labels, data.x_test, data.y_test, source="synthetic")
    with pytest.raises(DataError, match="cannot split"):
        split_indices(lonely, validation_size=50, split_seed=1)


def test_uint8_images_with_only_pixels_0_and_1_are_refused(tmp_path):
    """[0, 1] floats cast back to uint8 pass every dtype and range check and train on black
    images: refused in one line."""
    data = synthetic_cifar10(train=20, test=10, seed=0)
    scaled = np.round(data.x_train / 255).astype(np.uint8)
    with pytest.raises(DataError, match="x_train has only pixels 0 and 1: it looks scaled to"):
        load_cifar10(_npz_with(tmp_path, x_train=scaled))


@pytest.mark.parametrize(
    ("sizes", "message"),
    [
        ({"train_size": 901}, "the profile's train_size = 901 is more than the 900 training images left"),
        ({"validation_subset": 101}, "the profile's validation_size = 101 is more than the 100 validation images"),
        ({"test_size": 301}, "the profile's test_size = 301 is more than the 300 test images"),
    ],
)
def test_a_profile_asking_for_more_images_than_the_data_has_is_refused(sizes, message):
    """It used to train on every image there was and log the profile as if it had its budget."""
    data = synthetic_cifar10(train=1000, test=300)
    with pytest.raises(DataError, match=message):
        split_indices(data, validation_size=100, split_seed=1, **sizes)
    exact = {key: value - 1 for key, value in sizes.items()}
    assert split_indices(data, validation_size=100, split_seed=1, **exact)
