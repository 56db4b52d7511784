"""BatchNorm recalibration after training ("precise BN"): every trainable BatchNormalization
layer's moving statistics set to plain averages of its batch statistics over training images,
layer by layer in the order the forward pass reaches them. Keras APIs only."""

from __future__ import annotations

import numpy as np


def all_layers(container):
    for layer in getattr(container, "layers", []):
        yield layer
        yield from all_layers(layer)  # nested models: backbones, Sequential wrappers


RECALIBRATION_CHUNK = 1024  # images per forward pass while recalibrating (split into training-size batches)


class _Recorded(Exception):
    """Raised by a recording BatchNorm layer once it has seen its input: the rest of the forward
    pass is not needed."""


def trainable_batch_norms(model) -> list:
    """The model's BatchNormalization layers that training updated: a frozen backbone's (set
    trainable=False, as Keras propagates it into nested models) keep their statistics."""
    import keras

    return [
        layer for layer in all_layers(model) if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable
    ]


def recalibrate_batch_norm(model, x: np.ndarray, *, batch_size: int, images: int, seed: int) -> int:
    """Set every trainable BatchNormalization layer's moving mean and variance to plain averages
    of its batch statistics over ``images`` training images ("precise BN", as pycls'
    ``compute_precise_bn_stats``): the mean of the batch means and the mean of the (biased) batch
    variances, over ⌊images / batch_size⌋ batches of the recipe's batch size drawn from ``x``
    with ``seed``. After a few hundred steps the exponential moving averages (momentum 0.99)
    still lag weights that moved, and inference uses them; these averages are what the trained
    weights produce.

    Layers go in the order the forward pass reaches them, and each is measured with everything
    before it in inference mode (dropout off, earlier BatchNorm layers already recalibrated), so
    every layer's statistics are those of the inputs it sees at test time. pycls and SWA's
    ``bn_update`` run earlier layers in training mode instead. ``x`` goes through the model's own
    front (augmentation layers are identity in inference mode; fixed preprocessing applies), so
    the statistics are those of un-augmented images, the distribution the test set comes from.
    Keras APIs only. Returns how many layers were recalibrated (0: the model is untouched)."""
    import keras

    layers = trainable_batch_norms(model)
    if not layers:
        return 0
    batches = max(1, min(images, len(x)) // batch_size)
    size = min(batch_size, len(x))
    chosen = np.random.default_rng(seed).permutation(len(x))[: batches * size]
    chunk = size * max(1, RECALIBRATION_CHUNK // size)
    order: list = []

    def forward(until=None) -> None:
        for start in range(0, len(chosen), chunk):
            try:
                model(x[np.sort(chosen[start : start + chunk])], training=False)
            except _Recorded:
                continue
            if until is not None:
                raise RuntimeError(f"{until.name} was not reached by the forward pass")

    def recording(layer, sink: list | None):
        original = layer.call

        def call(inputs, *args, **kwargs):
            if sink is None:
                if layer not in order:
                    order.append(layer)
                return original(inputs, *args, **kwargs)
            # Each training-size batch's per-channel mean and (biased) variance, computed by the
            # backend in float32: only the small per-batch results come back to NumPy.
            values = keras.ops.cast(inputs, "float32")
            values = keras.ops.moveaxis(values, layer.axis % len(values.shape), -1)
            channels = values.shape[-1]
            batches = keras.ops.reshape(values, (values.shape[0] // size, -1, channels))
            means = keras.ops.convert_to_numpy(keras.ops.mean(batches, axis=1))
            variances = keras.ops.convert_to_numpy(keras.ops.var(batches, axis=1))
            sink.extend(zip(means.astype(np.float64), variances.astype(np.float64), strict=True))
            raise _Recorded

        return call

    for layer in layers:  # the order the forward pass reaches them (nested models included)
        object.__setattr__(layer, "call", recording(layer, None))
    try:
        model(x[chosen[:size]], training=False)
    finally:
        for layer in layers:
            object.__delattr__(layer, "call")
    for layer in order:
        statistics: list = []
        object.__setattr__(layer, "call", recording(layer, statistics))
        try:
            forward(until=layer)
        finally:
            object.__delattr__(layer, "call")
        means, variances = zip(*statistics, strict=True)
        layer.moving_mean.assign(np.mean(means, axis=0).astype(layer.moving_mean.dtype))
        layer.moving_variance.assign(np.mean(variances, axis=0).astype(layer.moving_variance.dtype))
    return len(order)
