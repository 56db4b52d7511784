"""Transfer-learning models: the ImageNet backbones of reports 002 (PROYECTO 10) and 003 (VGG16,
DenseNet121), and three modern fine-tuning reference points that no report ran (ResNet50,
MobileNetV2, EfficientNetB0).

Every builder takes ``weights`` (passed verbatim to the ``keras.applications`` constructor:
None for random initialisation, else the path of a verified ImageNet *notop* .h5 file that the
harness resolves) and always builds the backbone with ``include_top=False``. The harness feeds
[0, 1] floats; ``preprocessing`` says what the backbone then sees:

- ``"as_ran"``: exactly what the report fed it. Where the report rescaled already-scaled images
  a second time (report 003's fine-tuning generators), that is a ``Rescaling(1/255)`` layer
  inside the model; where it fed [0, 1] images, nothing is added.
- ``"imagenet"``: the backbone's own ``preprocess_input`` on 0–255 pixels: ``Rescaling(255)``
  then ``ImagenetPreprocess``.

Neither adds parameters. Resizing to 224×224 (bilinear, as the reports wrote it) is a layer
inside the model, applied per batch. The frozen-backbone builders (``r002_proyecto_10``,
``r003_tl_basic``) also take ``part`` ("model" | "features" | "head"), the harness's protocol
(``harness.run.features.frozen_parts``) for computing backbone features once and training only the
head on them.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Literal, get_args

from architectures.common import INPUT_SHAPE
from architectures.registry import register

if TYPE_CHECKING:
    from collections.abc import Callable

    import keras

RESIZED = 224  # the ImageNet input size every 224 builder resizes to
# What a recipe's architecture_options may say: the config checks a recipe against these annotations.
Preprocessing = Literal["as_ran", "imagenet"]
PREPROCESSING = get_args(Preprocessing)
PARTS = ("model", "features", "head")


@functools.cache
def _imagenet_preprocess_class() -> type:
    """Define (once) the layer that applies a Keras application's ``preprocess_input``; lazily,
    so that importing this module does not load Keras."""
    import keras

    @keras.saving.register_keras_serializable(package="cifar10_bench")
    class ImagenetPreprocess(keras.layers.Layer):
        """``keras.applications.<application>.preprocess_input`` on 0–255 RGB pixels; no weights."""

        def __init__(self, application: str, **kwargs):
            super().__init__(**kwargs)
            getattr(keras.applications, application).preprocess_input  # noqa: B018  fail early on a bad name
            self.application = application

        def call(self, inputs):
            return getattr(keras.applications, self.application).preprocess_input(inputs)

        def compute_output_shape(self, input_shape):
            return input_shape

        def get_config(self):
            return {**super().get_config(), "application": self.application}

    return ImagenetPreprocess


def _check_preprocessing(preprocessing: str) -> None:
    if preprocessing not in PREPROCESSING:
        raise ValueError(f"preprocessing must be one of {PREPROCESSING}. Received: preprocessing={preprocessing!r}")


def _input_layers(preprocessing: str, application: str, *, as_ran_scale: float | None = None) -> list:
    """Layers between the harness's [0, 1] input and the backbone (before any resizing).

    ``as_ran_scale``: the extra factor the report applied to already-scaled images (None: the
    report fed [0, 1] images as they are)."""
    from keras import layers

    _check_preprocessing(preprocessing)
    if preprocessing == "imagenet":
        return [
            layers.Rescaling(255.0, name="to_pixels"),
            _imagenet_preprocess_class()(application, name="imagenet_preprocess"),
        ]
    if as_ran_scale is None:
        return []
    return [layers.Rescaling(as_ran_scale, name="as_ran_rescale")]


def _resize() -> keras.layers.Layer:
    from keras import layers

    return layers.Resizing(RESIZED, RESIZED, interpolation="bilinear")


def _check_part(part: str) -> None:
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}. Received: part={part!r}")


def _frozen_split(
    name: str,
    features: keras.Model | None,
    head_input: int,
    head: list,
    part: str,
    input_shape: tuple[int, int, int],
) -> keras.Model:
    """The whole model (features then the head's layers, flat), or one of its two parts."""
    import keras

    if part == "features":
        return features
    if part == "head":
        return keras.Sequential([keras.Input(shape=(head_input,)), *head], name=f"{name}_head")
    return keras.Sequential([keras.Input(shape=input_shape), features, *head], name=name)


def _r003_head(dropout: float, num_classes: int) -> list:
    """Report 003's classifier: Dense 256 / 128, each He-uniform, L2 1e-4, → BatchNorm → ReLU → Dropout."""
    from keras import initializers, layers, regularizers

    def dense(units: int):
        return layers.Dense(
            units, kernel_initializer=initializers.HeUniform(), kernel_regularizer=regularizers.l2(1e-4)
        )

    return [
        dense(256),
        layers.BatchNormalization(),
        layers.ReLU(),
        layers.Dropout(dropout),
        dense(128),
        layers.BatchNormalization(),
        layers.ReLU(),
        layers.Dropout(dropout),
        layers.Dense(num_classes, activation="softmax"),
    ]


def _flattened(base: keras.Model, name: str) -> keras.Model:
    """``Model(base.input, Flatten()(base.output))``: the report's ``model_pre*`` (one flat layer list)."""
    import keras

    return keras.Model(base.input, keras.layers.Flatten()(base.output), name=name)


# ---------------------------------------------------------------------------------------------
# Report 002
# ---------------------------------------------------------------------------------------------


@register(backbone="vgg16")
def r002_proyecto_10(
    *,
    input_shape: tuple[int, int, int] = INPUT_SHAPE,
    num_classes: int = 10,
    weights: str | None = None,
    preprocessing: Preprocessing = "as_ran",
    part: str = "model",
):
    """Frozen VGG16 on 32×32 input (1×1×512 → 512 features), Dense 1024-1024-512 each + Dropout 0.5 (16,819,530 params)."""
    import keras
    from keras import layers

    _check_part(part)
    features = None
    if part != "head":
        base = keras.applications.VGG16(include_top=False, weights=weights, input_shape=input_shape)
        base.trainable = False
        inputs = keras.Input(shape=input_shape)
        x = inputs
        for layer in _input_layers(preprocessing, "vgg16"):  # as ran: [0, 1] images as they are (assumed)
            x = layer(x)
        outputs = layers.Flatten()(base(x))
        features = keras.Model(inputs, outputs, name="r002_proyecto_10_vgg16")
        features.trainable = False
    head = [
        layers.Dense(1024, activation="relu"),
        layers.Dropout(0.5),
        layers.Dense(1024, activation="relu"),
        layers.Dropout(0.5),
        layers.Dense(512, activation="relu"),
        layers.Dropout(0.5),
        layers.Dense(num_classes, activation="softmax"),
    ]
    width = (input_shape[0] // 32) * (input_shape[1] // 32) * 512  # five 2×2 max-pools
    return _frozen_split("r002_proyecto_10", features, width, head, part, input_shape)


# ---------------------------------------------------------------------------------------------
# Report 003
# ---------------------------------------------------------------------------------------------


@register(backbone="vgg16")
def r003_tl_basic(
    *,
    input_shape: tuple[int, int, int] = INPUT_SHAPE,
    num_classes: int = 10,
    weights: str | None = None,
    preprocessing: Preprocessing = "as_ran",
    part: str = "model",
):
    """Resize to 224, frozen VGG16, Flatten (25,088), Dense 256 / 128 with BN, ReLU, L2 1e-4, Dropout 0.6 (21,173,194 params)."""
    import keras

    _check_part(part)
    features = None
    if part != "head":
        base = keras.applications.VGG16(include_top=False, weights=weights, input_shape=(RESIZED, RESIZED, 3))
        inputs = keras.Input(shape=input_shape)
        x = inputs
        for layer in [*_input_layers(preprocessing, "vgg16"), _resize()]:  # as ran: x_*_scaled, [0, 1]
            x = layer(x)
        outputs = keras.layers.Flatten()(base(x))
        features = keras.Model(inputs, outputs, name="r003_tl_basic_prevgg16")
        features.trainable = False  # the report only ever called model_prevgg16.predict
    width = (RESIZED // 32) ** 2 * 512
    return _frozen_split("r003_tl_basic", features, width, _r003_head(0.6, num_classes), part, input_shape)


@register(backbone="vgg16")
def r003_vgg16_finetune(
    *,
    input_shape: tuple[int, int, int] = INPUT_SHAPE,
    num_classes: int = 10,
    weights: str | None = None,
    preprocessing: Preprocessing = "as_ran",
):
    """Resize to 224, VGG16 with block5 trainable, Flatten, Dense 256 / 128 with BN, ReLU, L2 1e-4, Dropout 0.5 (21,173,194 params)."""
    import keras

    base = keras.applications.VGG16(include_top=False, weights=weights, input_shape=(RESIZED, RESIZED, 3))
    prevgg16 = _flattened(base, "r003_vgg16_prevgg16")
    trainable = False
    for layer in prevgg16.layers:  # the report's loop: everything from block5_conv1 on trains
        if layer.name == "block5_conv1":
            trainable = True
        layer.trainable = trainable
    return keras.Sequential(
        [
            keras.Input(shape=input_shape),
            # as ran: the generators rescaled x_*_scaled by 1/255 a second time
            *_input_layers(preprocessing, "vgg16", as_ran_scale=1.0 / 255.0),
            _resize(),
            prevgg16,
            *_r003_head(0.5, num_classes),
        ],
        name="r003_vgg16_finetune",
    )


@register(backbone="densenet121")
def r003_densenet121_finetune(
    *,
    input_shape: tuple[int, int, int] = INPUT_SHAPE,
    num_classes: int = 10,
    weights: str | None = None,
    preprocessing: Preprocessing = "as_ran",
):
    """Resize to 224, DenseNet121 with its last 30 layers trainable (BN among them), Flatten, Dense 256 / 128, Dropout 0.4 (19,918,538 params).

    The last 30 layers of the report's ``model_prebase`` (DenseNet121 + Flatten, 428 layers)
    run from conv5_block13_0_relu to flatten and include 8 BatchNormalization layers
    (conv5_block13_1_bn ... the final ``bn``): under Keras 3 those are trainable (gamma/beta
    learn) and run in training mode (batch statistics, moving averages updated) during fit,
    while the frozen BN layers below run in inference mode, as the report's model did.
    """
    import keras

    base = keras.applications.DenseNet121(include_top=False, weights=weights, input_shape=(RESIZED, RESIZED, 3))
    prebase = _flattened(base, "r003_densenet121_prebase")
    for layer in prebase.layers:
        layer.trainable = False
    for layer in prebase.layers[-30:]:
        layer.trainable = True
    return keras.Sequential(
        [
            keras.Input(shape=input_shape),
            # as ran: the generators rescaled x_*_scaled by 1/255 a second time
            *_input_layers(preprocessing, "densenet", as_ran_scale=1.0 / 255.0),
            _resize(),
            prebase,
            *_r003_head(0.4, num_classes),
        ],
        name="r003_densenet121_finetune",
    )


# ---------------------------------------------------------------------------------------------
# Beyond the reports: modern fine-tuning reference points
# ---------------------------------------------------------------------------------------------


def _finetune_reference(
    name: str,
    base: keras.Model,
    application: str,
    trains: Callable[[keras.layers.Layer], bool],
    input_shape: tuple[int, int, int],
    num_classes: int,
) -> keras.Model:
    """Resize → own preprocess_input → backbone (top trainable, BN frozen, called with
    training=False) → GlobalAveragePooling2D → Dropout 0.2 → Dense softmax."""
    import keras
    from keras import layers

    base.trainable = True
    for layer in base.layers:
        layer.trainable = bool(trains(layer)) and not isinstance(layer, layers.BatchNormalization)
    inputs = keras.Input(shape=input_shape)
    x = inputs
    for layer in [*_input_layers("imagenet", application), _resize()]:
        x = layer(x)
    x = base(x, training=False)  # BN statistics (and the backbone's own dropout) stay in inference mode
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.2)(x)
    outputs = layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name=name)


def _from_first(base: keras.Model, prefix: str):
    """A predicate that is true for the first layer whose name starts with ``prefix`` and every later one."""
    names = [layer.name for layer in base.layers]
    first = next(i for i, n in enumerate(names) if n.startswith(prefix))
    top = set(names[first:])
    return lambda layer: layer.name in top


@register(backbone="resnet50")
def r_ext_resnet50_finetune(
    *,
    input_shape: tuple[int, int, int] = INPUT_SHAPE,
    num_classes: int = 10,
    weights: str | None = None,
    preprocessing: Preprocessing = "imagenet",
):
    """Not from a report: resize to 224, ResNet50 (caffe preprocessing) with the conv5 block trainable, BN frozen, GAP, Dropout 0.2.

    Standard Keras fine-tuning practice (keras.io "Transfer learning & fine-tuning"): the
    backbone is called with ``training=False`` and its BatchNormalization layers stay frozen
    (not trainable, inference mode) even inside the unfrozen top. ``preprocessing`` is always
    the backbone's own ``preprocess_input`` ("as_ran" has no meaning here and is treated as
    "imagenet").
    """
    import keras

    _check_preprocessing(preprocessing)  # no report ran this model: always ImageNet preprocessing
    base = keras.applications.ResNet50(include_top=False, weights=weights, input_shape=(RESIZED, RESIZED, 3))
    return _finetune_reference(
        "r_ext_resnet50_finetune",
        base,
        "resnet50",
        lambda layer: layer.name.startswith("conv5_"),
        input_shape,
        num_classes,
    )


@register(backbone="mobilenetv2")
def r_ext_mobilenetv2_finetune(
    *,
    input_shape: tuple[int, int, int] = INPUT_SHAPE,
    num_classes: int = 10,
    weights: str | None = None,
    preprocessing: Preprocessing = "imagenet",
):
    """Not from a report: resize to 224, MobileNetV2 ([-1, 1] preprocessing) trainable from block_13 on, BN frozen, GAP, Dropout 0.2.

    Standard Keras fine-tuning practice: the backbone is called with ``training=False`` and its
    BatchNormalization layers stay frozen inside the unfrozen top (block_13_expand to out_relu).
    "as_ran" is treated as "imagenet".
    """
    import keras

    _check_preprocessing(preprocessing)
    base = keras.applications.MobileNetV2(include_top=False, weights=weights, input_shape=(RESIZED, RESIZED, 3))
    return _finetune_reference(
        "r_ext_mobilenetv2_finetune",
        base,
        "mobilenet_v2",
        _from_first(base, "block_13_"),
        input_shape,
        num_classes,
    )


@register(backbone="efficientnetb0")
def r_ext_efficientnetb0_finetune(
    *,
    input_shape: tuple[int, int, int] = INPUT_SHAPE,
    num_classes: int = 10,
    weights: str | None = None,
    preprocessing: Preprocessing = "imagenet",
):
    """Not from a report: resize to 224, EfficientNetB0 (0-255 input) with block6, block7 and top trainable, BN frozen, GAP, Dropout 0.2.

    EfficientNet's ``preprocess_input`` is the identity: the model rescales and normalises
    0–255 pixels itself (its own Rescaling/Normalization layers). Standard Keras fine-tuning
    practice: the backbone is called with ``training=False`` (BN and its stochastic-depth
    dropout in inference mode) and its BatchNormalization layers stay frozen inside the
    unfrozen top. "as_ran" is treated as "imagenet".
    """
    import keras

    _check_preprocessing(preprocessing)
    base = keras.applications.EfficientNetB0(include_top=False, weights=weights, input_shape=(RESIZED, RESIZED, 3))
    return _finetune_reference(
        "r_ext_efficientnetb0_finetune",
        base,
        "efficientnet",
        lambda layer: layer.name.startswith(("block6", "block7", "top_")),
        input_shape,
        num_classes,
    )
