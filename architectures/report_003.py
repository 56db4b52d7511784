"""Report 003 (Spanish, Miroslavna Kovylina Zabyako): CNN steps "Arquitectura 1" to
"Arquitectura 3 con Data Augmentation mejor"; the transfer-learning sections (VGG16,
DenseNet121) are out of scope.

Convolutions are 3×3, 'same' padding, He-normal initialised (He-uniform in Arquitectura 3); the
output is Dense(10, softmax) with the default initializer. The two data-augmentation steps reuse
``r003_arq3``; they differ only in training.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from architectures.common import INPUT_SHAPE
from architectures.common import sequential as _sequential
from architectures.registry import register

if TYPE_CHECKING:
    import keras


@register()
def r003_arq1(*, input_shape: tuple[int, int, int] = INPUT_SHAPE, num_classes: int = 10):
    """BN conv pairs 64 / 128 with dropout 0.3, Dense 256-128 with BN and dropout 0.4 (2,394,826 params)."""
    from keras import initializers, layers

    def conv(filters: int) -> list:
        return [
            layers.Conv2D(
                filters,
                (3, 3),
                padding="same",
                activation="relu",
                kernel_initializer=initializers.HeNormal(),
            ),
            layers.BatchNormalization(),
        ]

    def dense(units: int) -> list:
        return [
            layers.Dense(units, activation="relu", kernel_initializer=initializers.HeNormal()),
            layers.BatchNormalization(),
            layers.Dropout(0.4),
        ]

    return _sequential(
        "r003_arq1",
        input_shape,
        [
            *conv(64),
            *conv(64),
            layers.MaxPooling2D((2, 2)),
            layers.Dropout(0.3),
            *conv(128),
            *conv(128),
            layers.MaxPooling2D((2, 2)),
            layers.Dropout(0.3),
            layers.Flatten(),
            *dense(256),
            *dense(128),
            layers.Dense(num_classes, activation="softmax"),
        ],
    )


def _bn_relu(
    layer: keras.layers.Layer,
    dropout: float | None = None,
    *,
    leaky: float | None = None,
    batch_norm: bool = True,
) -> list:
    """``layer`` (linear), BatchNorm, then a separate ReLU (LeakyReLU if ``leaky``), optionally Dropout."""
    from keras import layers

    act = layers.LeakyReLU(negative_slope=leaky) if leaky else layers.ReLU()
    block = [layer, *([layers.BatchNormalization()] if batch_norm else []), act]
    if dropout:
        block.append(layers.Dropout(dropout))
    return block


@register()
def r003_arq1_mejorada(*, input_shape: tuple[int, int, int] = INPUT_SHAPE, num_classes: int = 10):
    """Arq. 1 with conv/dense → BN → ReLU, L2 1e-4, more dropout (0.3/0.3/0.4, dense 0.5) (2,394,826 params)."""
    from keras import initializers, layers, regularizers

    def conv(filters: int):
        return layers.Conv2D(
            filters,
            (3, 3),
            padding="same",
            kernel_initializer=initializers.HeNormal(),
            kernel_regularizer=regularizers.l2(1e-4),
        )

    def dense(units: int):
        return layers.Dense(
            units,
            kernel_initializer=initializers.HeNormal(),
            kernel_regularizer=regularizers.l2(1e-4),
        )

    return _sequential(
        "r003_arq1_mejorada",
        input_shape,
        [
            *_bn_relu(conv(64), dropout=0.3),
            *_bn_relu(conv(64)),
            layers.MaxPooling2D((2, 2)),
            layers.Dropout(0.3),
            *_bn_relu(conv(128)),
            *_bn_relu(conv(128)),
            layers.MaxPooling2D((2, 2)),
            layers.Dropout(0.4),
            layers.Flatten(),
            *_bn_relu(dense(256), dropout=0.5),
            *_bn_relu(dense(128), dropout=0.5),
            layers.Dense(num_classes, activation="softmax"),
        ],
    )


def _arq2(
    name: str,
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    leaky: float | None,
    dense_batch_norm: bool,
) -> keras.Model:
    """Arquitectura 2's layers: conv 32 / 64 / 128 each pooled, conv 128 unpooled, Dense 256-128."""
    from keras import initializers, layers

    def conv(filters: int):
        return layers.Conv2D(filters, (3, 3), padding="same", kernel_initializer=initializers.HeNormal())

    def dense(units: int):
        return layers.Dense(units, kernel_initializer=initializers.HeNormal())

    return _sequential(
        name,
        input_shape,
        [
            *_bn_relu(conv(32), leaky=leaky),
            layers.MaxPooling2D((2, 2)),
            layers.Dropout(0.25),
            *_bn_relu(conv(64), leaky=leaky),
            layers.MaxPooling2D((2, 2)),
            layers.Dropout(0.3),
            *_bn_relu(conv(128), leaky=leaky),
            layers.MaxPooling2D((2, 2)),
            layers.Dropout(0.3),
            *_bn_relu(conv(128), dropout=0.4, leaky=leaky),
            layers.Flatten(),
            *_bn_relu(dense(256), dropout=0.4, leaky=leaky, batch_norm=dense_batch_norm),
            *_bn_relu(dense(128), dropout=0.4, leaky=leaky, batch_norm=dense_batch_norm),
            layers.Dense(num_classes, activation="softmax"),
        ],
    )


@register()
def r003_arq2(*, input_shape: tuple[int, int, int] = INPUT_SHAPE, num_classes: int = 10):
    """Lighter: BN-ReLU convs 32/64/128 each pooled + unpooled 128, no L2, Dense 256-128 (802,506 params)."""
    return _arq2("r003_arq2", input_shape, num_classes, leaky=None, dense_batch_norm=True)


@register()
def r003_arq2_leaky(*, input_shape: tuple[int, int, int] = INPUT_SHAPE, num_classes: int = 10):
    """Arquitectura 2 with LeakyReLU(0.1) for ReLU and, as printed, no BN on the Dense layers (800,970 params)."""
    return _arq2("r003_arq2_leaky", input_shape, num_classes, leaky=0.1, dense_batch_norm=False)


@register()
def r003_arq3(*, input_shape: tuple[int, int, int] = INPUT_SHAPE, num_classes: int = 10):
    """Three He-uniform L2 BN-ReLU conv pairs 64 / 128 / 128 with dropout, Dense 256-128 (1,118,154 params)."""
    from keras import initializers, layers, regularizers

    def conv(filters: int):
        return layers.Conv2D(
            filters,
            (3, 3),
            padding="same",
            kernel_initializer=initializers.HeUniform(),
            kernel_regularizer=regularizers.l2(1e-4),
        )

    def dense(units: int):
        return layers.Dense(
            units,
            kernel_initializer=initializers.HeUniform(),
            kernel_regularizer=regularizers.l2(1e-4),
        )

    def conv_pair(filters: int, dropout_out: float) -> list:
        return [
            *_bn_relu(conv(filters), dropout=0.3),
            *_bn_relu(conv(filters)),
            layers.MaxPooling2D((2, 2)),
            layers.Dropout(dropout_out),
        ]

    return _sequential(
        "r003_arq3",
        input_shape,
        [
            *conv_pair(64, 0.3),
            *conv_pair(128, 0.4),
            *conv_pair(128, 0.4),
            layers.Flatten(),
            *_bn_relu(dense(256), dropout=0.5),
            *_bn_relu(dense(128), dropout=0.5),
            layers.Dense(num_classes, activation="softmax"),
        ],
    )
