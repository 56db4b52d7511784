"""Augmentation presets (ImageDataGenerator arguments) as Keras layers.

The reports augmented with ``ImageDataGenerator``; the harness reproduces its semantics with
backend-agnostic Keras layers that sit in front of the model, so augmentation runs on the
device, inside ``model.fit``, and only in training:

- rotation, width/height shift, shear and zoom are composed into ONE affine matrix per image
  exactly as ``ImageDataGenerator.apply_affine_transform`` does (shear in degrees, zoom drawn
  per axis from [1 - z, 1 + z], bilinear interpolation, the preset's fill mode);
- channel shift adds one uniform offset per image, clipped to that image's range (as IDG);
- brightness multiplies by a uniform factor and clips to [0, 1] (IDG goes through PIL: same
  factor, slightly different rounding);
- flips are ``keras.layers.RandomFlip``;
- featurewise / samplewise centring and std normalisation and ZCA whitening are fitted on the
  training images and applied to train, validation AND test images alike (several reports
  standardised only the training generator; the harness evaluates every split the same way).
- ``rescale`` is ignored: the harness scales inputs to [0, 1] exactly once.

Two rules keep augmentation working wherever the model step runs:

- **XLA.** TensorFlow's image-warp kernel (``ImageProjectiveTransformV3``, behind
  ``keras.ops.image.affine_transform``) has no XLA implementation, so a step compiled with XLA
  (``jit_compile=True``, which Keras' ``"auto"`` picks on any GPU) cannot contain it. Built with
  ``xla=True``, the affine layer warps with gathers instead (``affine_transform_by_gather``: the
  same bilinear sampling and fill modes as the kernel, in plain ``keras.ops``), so the whole step,
  augmentation included, compiles; built with ``xla=False`` it keeps the kernel, reports
  ``supports_jit = False`` and gives the same numbers as before.
- **Mixed precision.** Every augmentation layer computes in float32 whatever the global dtype
  policy (``dtype="float32"``); the model's first layer casts to the compute dtype after it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

AFFINE_KEYS = ("rotation_range", "width_shift_range", "height_shift_range", "shear_range", "zoom_range")
STANDARDIZE_KEYS = (
    "featurewise_center",
    "featurewise_std_normalization",
    "samplewise_center",
    "samplewise_std_normalization",
    "zca_whitening",
)
EPSILON = 1e-6  # IDG's epsilon for std division and ZCA


def _zoom_bounds(zoom: Any) -> tuple[float, float]:
    if isinstance(zoom, (list, tuple)):
        return float(zoom[0]), float(zoom[1])
    return 1.0 - float(zoom), 1.0 + float(zoom)


def _truncate(ops, value):
    """Round toward zero, as C++'s static_cast<int> does."""
    return ops.sign(value) * ops.floor(ops.abs(value))


def _map_coordinate(ops, coordinate, size: int, fill_mode: str):
    """Where an output pixel reads from along one axis, by fill mode, exactly as TensorFlow's
    ``MapCoordinate`` (image_ops.h) does for ImageProjectiveTransformV3."""
    last = float(size - 1)
    if fill_mode == "constant":
        return coordinate
    if fill_mode == "nearest" or size <= 1:
        return ops.clip(coordinate, 0.0, last)
    if fill_mode == "reflect":
        period = float(2 * size)
        below = period * _truncate(ops, -coordinate / period) + coordinate
        below = ops.where(below < -size, below + period, -below - 1.0)
        above = coordinate - period * _truncate(ops, coordinate / period)
        above = ops.where(above >= size, period - above - 1.0, above)
    else:  # wrap
        below = coordinate + size * (_truncate(ops, -coordinate / last) + 1.0)
        above = coordinate - size * _truncate(ops, coordinate / last)
    mapped = ops.where(coordinate < 0, below, ops.where(coordinate > last, above, coordinate))
    return ops.clip(mapped, 0.0, last)


def affine_transform_by_gather(images, transform, *, fill_mode: str = "nearest", fill_value: float = 0.0):
    """Bilinear projective warp of a batch of NHWC images, with the semantics of
    ``keras.ops.image.affine_transform`` (``transform`` rows are [a0, a1, a2, b0, b1, b2, c0, c1],
    mapping output (x, y) to input), written with gathers so that XLA can compile it. Static
    height, width and channels are required (they are: 32×32×3 or a fixed resize)."""
    from keras import ops

    images = ops.cast(images, "float32")
    transform = ops.cast(transform, "float32")
    _, height, width, channels = images.shape
    batch = ops.shape(images)[0]
    rows, cols = ops.meshgrid(ops.arange(height, dtype="float32"), ops.arange(width, dtype="float32"), indexing="ij")
    out_y, out_x = ops.reshape(rows, (1, -1)), ops.reshape(cols, (1, -1))
    t = [transform[:, i : i + 1] for i in range(8)]
    projection = t[6] * out_x + t[7] * out_y + 1.0
    safe = ops.where(projection == 0, 1.0, projection)
    in_x = _map_coordinate(ops, (t[0] * out_x + t[1] * out_y + t[2]) / safe, width, fill_mode)
    in_y = _map_coordinate(ops, (t[3] * out_x + t[4] * out_y + t[5]) / safe, height, fill_mode)
    flat = ops.reshape(images, (-1, channels))  # (batch · height · width, channels)
    offset = ops.reshape(ops.arange(batch, dtype="int32") * (height * width), (-1, 1))
    fill = ops.cast(fill_value, "float32")

    def read(y, x):
        """Pixels at integral (y, x) per image; the fill value outside the image."""
        inside = (y >= 0) & (y <= height - 1) & (x >= 0) & (x <= width - 1)
        index = ops.cast(ops.clip(y, 0, height - 1) * width + ops.clip(x, 0, width - 1), "int32") + offset
        values = ops.take(flat, ops.reshape(index, (-1,)), axis=0)
        values = ops.reshape(values, (batch, height * width, channels))
        return ops.where(ops.expand_dims(inside, -1), values, fill)

    x_floor, y_floor = ops.floor(in_x), ops.floor(in_y)
    x_ceil, y_ceil = x_floor + 1.0, y_floor + 1.0
    wx0, wx1 = ops.expand_dims(x_ceil - in_x, -1), ops.expand_dims(in_x - x_floor, -1)
    wy0, wy1 = ops.expand_dims(y_ceil - in_y, -1), ops.expand_dims(in_y - y_floor, -1)
    at_floor = wx0 * read(y_floor, x_floor) + wx1 * read(y_floor, x_ceil)
    at_ceil = wx0 * read(y_ceil, x_floor) + wx1 * read(y_ceil, x_ceil)
    warped = wy0 * at_floor + wy1 * at_ceil
    warped = ops.where(ops.expand_dims(projection == 0, -1), fill, warped)
    return ops.reshape(warped, (batch, height, width, channels))


def _layer_classes():
    """Define the custom layers lazily so that importing this module does not load Keras."""
    import keras
    from keras import ops

    class IDGAffine(keras.layers.Layer):
        """ImageDataGenerator's random rotation/shift/shear/zoom as one affine warp per image."""

        def __init__(
            self,
            rotation_range: float = 0.0,
            width_shift_range: float = 0.0,
            height_shift_range: float = 0.0,
            shear_range: float = 0.0,
            zoom_range: Any = 0.0,
            fill_mode: str = "nearest",
            cval: float = 0.0,
            seed: int | None = None,
            xla: bool = False,
            **kwargs: Any,
        ) -> None:
            super().__init__(**{"dtype": "float32", **kwargs})
            self.xla = bool(xla)
            self.supports_jit = self.xla  # the TF warp kernel has no XLA implementation
            self.rotation_range = float(rotation_range)
            self.width_shift_range = float(width_shift_range)
            self.height_shift_range = float(height_shift_range)
            self.shear_range = float(shear_range)
            self.zoom_range = zoom_range
            self.fill_mode = fill_mode
            self.cval = float(cval)
            self.seed = seed
            self.seed_generator = keras.random.SeedGenerator(seed)

        def _uniform(self, batch, low, high):
            return keras.random.uniform((batch,), low, high, seed=self.seed_generator)

        def call(self, images, training=None):
            if not training:
                return images
            shape = ops.shape(images)
            batch, rows, cols = shape[0], shape[1], shape[2]
            rows_f, cols_f = ops.cast(rows, "float32"), ops.cast(cols, "float32")
            zero = ops.zeros((batch,))
            one = ops.ones((batch,))
            theta = self._uniform(batch, -self.rotation_range, self.rotation_range) * (math.pi / 180)
            # IDG: a range below 1 is a fraction of the image size, otherwise pixels.
            h_scale = rows_f if self.height_shift_range < 1 else 1.0
            w_scale = cols_f if self.width_shift_range < 1 else 1.0
            tx = self._uniform(batch, -self.height_shift_range, self.height_shift_range) * h_scale
            ty = self._uniform(batch, -self.width_shift_range, self.width_shift_range) * w_scale
            shear = self._uniform(batch, -self.shear_range, self.shear_range) * (math.pi / 180)
            low, high = _zoom_bounds(self.zoom_range)
            zx = self._uniform(batch, low, high)
            zy = self._uniform(batch, low, high)

            def matrix(rows_):
                return ops.stack([ops.stack(r, axis=-1) for r in rows_], axis=-2)

            rotation = matrix(
                [[ops.cos(theta), -ops.sin(theta), zero], [ops.sin(theta), ops.cos(theta), zero], [zero, zero, one]]
            )
            shift = matrix([[one, zero, tx], [zero, one, ty], [zero, zero, one]])
            shearing = matrix([[one, -ops.sin(shear), zero], [zero, ops.cos(shear), zero], [zero, zero, one]])
            zoom = matrix([[zx, zero, zero], [zero, zy, zero], [zero, zero, one]])
            transform = rotation @ shift @ shearing @ zoom
            # Centre the transform (IDG's transform_matrix_offset_center), in (row, col) coords.
            ox, oy = rows_f / 2 + 0.5, cols_f / 2 + 0.5
            offset = matrix([[one, zero, one * ox], [zero, one, one * oy], [zero, zero, one]])
            reset = matrix([[one, zero, -one * ox], [zero, one, -one * oy], [zero, zero, one]])
            m = offset @ transform @ reset
            # Keras wants output (x=col, y=row) -> input (x', y'): swap row/col roles.
            flat = ops.stack(
                [m[:, 1, 1], m[:, 1, 0], m[:, 1, 2], m[:, 0, 1], m[:, 0, 0], m[:, 0, 2], zero, zero],
                axis=-1,
            )
            if self.xla:
                return affine_transform_by_gather(images, flat, fill_mode=self.fill_mode, fill_value=self.cval)
            return ops.image.affine_transform(
                images, flat, interpolation="bilinear", fill_mode=self.fill_mode, fill_value=self.cval
            )

        def get_config(self):
            return {
                **super().get_config(),
                "rotation_range": self.rotation_range,
                "width_shift_range": self.width_shift_range,
                "height_shift_range": self.height_shift_range,
                "shear_range": self.shear_range,
                "zoom_range": self.zoom_range,
                "fill_mode": self.fill_mode,
                "cval": self.cval,
                "seed": self.seed,
                "xla": self.xla,
            }

    class IDGChannelShift(keras.layers.Layer):
        """Add one uniform offset in [-r, r] per image, clipped to the image's own range."""

        def __init__(self, intensity: float, seed: int | None = None, **kwargs: Any) -> None:
            super().__init__(**{"dtype": "float32", **kwargs})
            self.intensity = float(intensity)
            self.seed = seed
            self.seed_generator = keras.random.SeedGenerator(seed)

        def call(self, images, training=None):
            if not training:
                return images
            batch = ops.shape(images)[0]
            shift = keras.random.uniform((batch, 1, 1, 1), -self.intensity, self.intensity, seed=self.seed_generator)
            shift = ops.cast(shift, images.dtype)
            low = ops.min(images, axis=(1, 2, 3), keepdims=True)
            high = ops.max(images, axis=(1, 2, 3), keepdims=True)
            return ops.clip(images + shift, low, high)

        def get_config(self):
            return {**super().get_config(), "intensity": self.intensity, "seed": self.seed}

    class IDGBrightness(keras.layers.Layer):
        """Multiply each image by a uniform factor in [low, high], clipped to [0, 1]."""

        def __init__(self, low: float, high: float, seed: int | None = None, **kwargs: Any) -> None:
            super().__init__(**{"dtype": "float32", **kwargs})
            self.low, self.high, self.seed = float(low), float(high), seed
            self.seed_generator = keras.random.SeedGenerator(seed)

        def call(self, images, training=None):
            if not training:
                return images
            batch = ops.shape(images)[0]
            factor = keras.random.uniform((batch, 1, 1, 1), self.low, self.high, seed=self.seed_generator)
            factor = ops.cast(factor, images.dtype)
            return ops.clip(images * factor, 0.0, 1.0)

        def get_config(self):
            return {**super().get_config(), "low": self.low, "high": self.high, "seed": self.seed}

    class Standardize(keras.layers.Layer):
        """IDG's standardize(): fixed statistics fitted on the training images; runs always."""

        def __init__(
            self,
            samplewise_center: bool = False,
            samplewise_std_normalization: bool = False,
            mean: Any = None,
            std: Any = None,
            zca: Any = None,
            **kwargs: Any,
        ) -> None:
            super().__init__(**{"dtype": "float32", **kwargs})
            self.samplewise_center = samplewise_center
            self.samplewise_std_normalization = samplewise_std_normalization
            self.mean = None if mean is None else np.asarray(mean, dtype="float32")
            self.std = None if std is None else np.asarray(std, dtype="float32")
            self.zca = None if zca is None else np.asarray(zca, dtype="float32")

        def call(self, images):
            if self.samplewise_center:
                images = images - ops.mean(images, axis=(1, 2, 3), keepdims=True)
            if self.samplewise_std_normalization:
                images = images / (ops.std(images, axis=(1, 2, 3), keepdims=True) + EPSILON)
            if self.mean is not None:
                images = images - self.mean
            if self.std is not None:
                images = images / (self.std + EPSILON)
            if self.zca is not None:
                shape = ops.shape(images)
                flat = ops.reshape(images, (shape[0], -1))
                images = ops.reshape(ops.matmul(flat, self.zca), shape)
            return images

        def get_config(self):
            def listed(value):
                return None if value is None else value.tolist()

            return {
                **super().get_config(),
                "samplewise_center": self.samplewise_center,
                "samplewise_std_normalization": self.samplewise_std_normalization,
                "mean": listed(self.mean),
                "std": listed(self.std),
                "zca": listed(self.zca),
            }

    return IDGAffine, IDGChannelShift, IDGBrightness, Standardize


def fit_standardization(preset: dict[str, Any], x_train: np.ndarray) -> dict[str, Any]:
    """IDG.fit(): featurewise mean/std per channel and the ZCA matrix, from training images."""
    stats: dict[str, Any] = {}
    x = x_train.astype(np.float64)
    if preset.get("featurewise_center") or preset.get("zca_whitening"):
        stats["mean"] = x.mean(axis=(0, 1, 2)).reshape(1, 1, 1, -1)
        x = x - stats["mean"]
    if preset.get("featurewise_std_normalization"):
        stats["std"] = x.std(axis=(0, 1, 2)).reshape(1, 1, 1, -1)
        x = x / (stats["std"] + EPSILON)
    if preset.get("zca_whitening"):
        stats["zca"] = zca_matrix(x.reshape(len(x), -1))
    return stats


def zca_matrix(flat: np.ndarray) -> np.ndarray:
    """Keras 2's IDG ZCA of ``flat`` (n images × d features, centred): with Σ = XᵀX/n = U diag(s) Uᵀ
    over all d directions, U diag(1/√(s+ε)) Uᵀ. Σ is symmetric, so ``eigh`` finds U and s (IDG's SVD
    of Σ gives the same, slower). With fewer images than features (a test's few images; never a
    run's 40,000 against 3,072), Σ has rank ≤ n: from the thin SVD X = W S Vᵀ, Σ = V (S²/n) Vᵀ and
    0 on the rest, where IDG's factor is 1/√ε, so the same matrix is V diag(1/√(S²/n+ε) − 1/√ε) Vᵀ
    + I/√ε, in O(n²d) instead of O(d³)."""
    n, d = flat.shape
    if n < d:
        _, singular, vt = np.linalg.svd(flat, full_matrices=False)
        null = 1.0 / np.sqrt(EPSILON)
        return (vt.T * (1.0 / np.sqrt(singular**2 / n + EPSILON) - null)) @ vt + null * np.eye(d)
    values, vectors = np.linalg.eigh(flat.T @ flat / n)
    return (vectors * (1.0 / np.sqrt(np.clip(values, 0.0, None) + EPSILON))) @ vectors.T


def build_augmentation(
    preset: dict[str, Any], *, seed: int, x_train: np.ndarray | None = None, xla: bool = False
) -> list:
    """Keras layers for a preset, in IDG's order: affine, channel shift, flips, brightness,
    then standardisation. Random layers act only when ``training=True``. ``xla``: the train step
    will be compiled with XLA, so warp with gathers (see the module docstring)."""
    if not preset:
        return []
    from keras import layers

    IDGAffine, IDGChannelShift, IDGBrightness, Standardize = _layer_classes()
    built: list = []
    if any(preset.get(key) for key in AFFINE_KEYS):
        built.append(
            IDGAffine(
                **{key: preset.get(key, 0.0) for key in AFFINE_KEYS},
                fill_mode=preset.get("fill_mode", "nearest"),
                cval=preset.get("cval", 0.0),
                seed=seed,
                xla=xla,
                name="augment_affine",
            )
        )
    if preset.get("channel_shift_range"):
        built.append(IDGChannelShift(preset["channel_shift_range"], seed=seed + 1, name="augment_channel_shift"))
    flips = [
        m for m, on in (("horizontal", preset.get("horizontal_flip")), ("vertical", preset.get("vertical_flip"))) if on
    ]
    if flips:
        built.append(layers.RandomFlip("_and_".join(flips), seed=seed + 2, name="augment_flip", dtype="float32"))
    if preset.get("brightness_range"):
        low, high = preset["brightness_range"]
        built.append(IDGBrightness(low, high, seed=seed + 3, name="augment_brightness"))
    if any(preset.get(key) for key in STANDARDIZE_KEYS):
        needs_fit = any(preset.get(k) for k in ("featurewise_center", "featurewise_std_normalization", "zca_whitening"))
        if needs_fit and x_train is None:
            raise ValueError("featurewise statistics need the training images (x_train)")
        stats = fit_standardization(preset, x_train) if needs_fit else {}
        built.append(
            Standardize(
                samplewise_center=bool(preset.get("samplewise_center")),
                samplewise_std_normalization=bool(preset.get("samplewise_std_normalization")),
                name="standardize",
                **stats,
            )
        )
    return built
