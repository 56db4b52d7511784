"""Augmentation layers act only in training and keep images valid."""

from __future__ import annotations

import numpy as np
import pytest

from harness.run.augment import build_augmentation, fit_standardization


def images(count=8, seed=0):
    return np.random.default_rng(seed).random((count, 32, 32, 3), dtype=np.float32)


def apply(layers, batch, training):
    for layer in layers:
        batch = layer(batch, training=training)
    return np.asarray(batch)


def test_empty_preset_builds_nothing():
    assert build_augmentation({}, seed=0) == []


def test_random_layers_are_identity_at_inference_and_change_images_in_training():
    preset = {
        "rotation_range": 30,
        "width_shift_range": 0.2,
        "height_shift_range": 0.2,
        "shear_range": 20,
        "zoom_range": 0.2,
        "horizontal_flip": True,
        "channel_shift_range": 0.1,
        "brightness_range": [0.8, 1.2],
    }
    layers = build_augmentation(preset, seed=1)
    batch = images()
    assert np.array_equal(apply(layers, batch, training=False), batch)
    augmented = apply(layers, batch, training=True)
    assert augmented.shape == batch.shape and np.isfinite(augmented).all()
    assert not np.allclose(augmented, batch)
    assert augmented.min() >= -1e-5 and augmented.max() <= 1 + 1e-5


def test_flip_only_gives_identity_or_mirror():
    layers = build_augmentation({"horizontal_flip": True}, seed=3)
    batch = images(16)
    out = apply(layers, batch, training=True)
    for original, flipped in zip(batch, out, strict=True):
        assert np.allclose(flipped, original) or np.allclose(flipped, original[:, ::-1])


def test_affine_with_unit_zoom_is_identity_in_training():
    layers = build_augmentation({"zoom_range": [1.0, 1.0]}, seed=5)
    batch = images(4)
    assert np.allclose(apply(layers, batch, training=True), batch, atol=1e-5)


def test_affine_uses_imagedatagenerator_geometry():
    # zoom factor -1 on both axes is a point reflection about IDG's centre (h/2 + 0.5, w/2 + 0.5):
    # output pixel r reads input pixel 33 - r, i.e. a 180-degree turn shifted by two pixels.
    layers = build_augmentation({"zoom_range": [-1.0, -1.0]}, seed=5)
    batch = images(3)
    out = apply(layers, batch, training=True)
    turned = batch[:, ::-1, ::-1, :]
    assert np.allclose(out[:, 2:, 2:], turned[:, :30, :30], atol=1e-5)


def test_featurewise_standardisation_runs_at_inference_too():
    batch = images(64)
    layers = build_augmentation(
        {"featurewise_center": True, "featurewise_std_normalization": True}, seed=0, x_train=batch
    )
    out = apply(layers, batch, training=False)
    assert np.allclose(out.mean(axis=(0, 1, 2)), 0, atol=1e-4)
    assert np.allclose(out.std(axis=(0, 1, 2)), 1, atol=1e-3)


def test_zca_whitening_decorrelates():
    batch = images(200, seed=2)[:, :4, :4, :]  # 48 features keep the SVD small
    stats = fit_standardization({"zca_whitening": True}, batch)
    flat = (batch - stats["mean"]).reshape(len(batch), -1) @ stats["zca"]
    covariance = flat.T @ flat / len(flat)
    off_diagonal = covariance - np.diag(np.diag(covariance))
    assert np.abs(off_diagonal).max() < 0.05


@pytest.mark.parametrize("count", [20, 200])
def test_zca_matrix_is_idgs_svd_of_the_covariance(count):
    """Fewer images than features (the thin SVD) and more (eigh): both are Keras 2 IDG's
    U diag(1/√(s+ε)) Uᵀ from the SVD of Σ, directions Σ does not span included."""
    from harness.run.augment import EPSILON, zca_matrix

    flat = images(count, seed=4)[:, :4, :4, :].reshape(count, -1).astype(np.float64)
    flat -= flat.mean(axis=0)
    u, s, _ = np.linalg.svd(flat.T @ flat / count)
    idg = (u * (1.0 / np.sqrt(s[np.newaxis] + EPSILON))) @ u.T
    assert np.abs(zca_matrix(flat) - idg).max() < 1e-6 * np.abs(idg).max()
