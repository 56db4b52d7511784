"""Pretrained weights: found and verified, or a clear error naming the file, hash and origin."""

from __future__ import annotations

import hashlib

import pytest

from harness.run import weights
from harness.run.weights import BACKBONES, Backbone, WeightsMissing, resolve


@pytest.fixture
def fake_backbone(monkeypatch, tmp_path):
    """A backbone whose published file is a small blob we can make, with its real md5."""
    blob = b"not really weights"
    backbone = Backbone(
        "fakenet",
        "FakeNet",
        "fakenet_notop.h5",
        "https://example.invalid/fakenet_notop.h5",
        hashlib.md5(blob).hexdigest(),
    )
    monkeypatch.setitem(BACKBONES, "fakenet", backbone)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    return backbone, blob


def test_weights_dir_file_with_the_published_hash_is_used(fake_backbone, tmp_path):
    backbone, blob = fake_backbone
    (tmp_path / backbone.file_name).write_bytes(blob)
    assert resolve("fakenet", tmp_path, download=False) == tmp_path / backbone.file_name


def test_keras_cache_is_searched_after_weights_dir(fake_backbone, tmp_path):
    backbone, blob = fake_backbone
    cache = tmp_path / "keras-home" / "models"
    cache.mkdir(parents=True)
    (cache / backbone.file_name).write_bytes(blob)
    assert resolve("fakenet", tmp_path / "empty", download=False) == cache / backbone.file_name


def test_a_file_that_fails_its_hash_is_refused(fake_backbone, tmp_path):
    backbone, _ = fake_backbone
    (tmp_path / backbone.file_name).write_bytes(b"tampered")
    with pytest.raises(WeightsMissing, match="does not match the published md5"):
        resolve("fakenet", tmp_path, download=False)


def test_missing_offline_names_file_hash_and_origin(fake_backbone, tmp_path, monkeypatch):
    backbone, _ = fake_backbone

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://example.invalid: None -- [Errno -2] Name or service not known")

    import keras.utils

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(WeightsMissing) as error:
        resolve("fakenet", tmp_path)
    message = str(error.value)
    for part in (
        backbone.file_name,
        backbone.file_hash,
        backbone.origin,
        "the download failed ([Errno -2] Name or service not known)",
    ):
        assert part in message


def test_every_published_hash_is_md5_or_sha256():
    for backbone in BACKBONES.values():
        assert backbone.file_name.endswith(".h5") and backbone.origin.endswith(backbone.file_name)
        assert backbone.file_hash is None or len(backbone.file_hash) in (32, 64)


def test_keras_cache_honours_keras_home(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert weights.keras_cache() == tmp_path / "models"
