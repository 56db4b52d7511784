"""Pretrained ImageNet weights for the transfer recipes: find, verify, or fail at once.

A transfer recipe never silently trains from random initialisation. Before anything trains,
each backbone's published *notop* weights file is looked up in ``--weights-dir`` (or
``BENCH_WEIGHTS_DIR``), then in the Keras cache (``$KERAS_HOME/models``, default
``~/.keras/models``); a file found there must match its published hash. If none is found,
Keras downloads it into its cache (online). Offline, the sweep skips the recipes that need it,
with one line that names the missing file, its hash and where it is published. Only tests and ``--random-weights``
build a backbone without weights, and such runs get their own identity.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from harness.errors import WeightsMissing

_GCS = "https://storage.googleapis.com/tensorflow/keras-applications"


@dataclass(frozen=True)
class Backbone:
    """One Keras application's ImageNet weights without the classification top."""

    name: str
    application: str  # the keras.applications constructor
    file_name: str
    origin: str
    file_hash: str | None  # as Keras publishes it: md5 (32 hex) or sha256 (64 hex); None if unpublished


BACKBONES: dict[str, Backbone] = {
    backbone.name: backbone
    for backbone in (
        Backbone(
            "vgg16",
            "VGG16",
            "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
            f"{_GCS}/vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
            "6d6bbae143d832006294945121d1f1fc",
        ),
        Backbone(
            "densenet121",
            "DenseNet121",
            "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5",
            f"{_GCS}/densenet/densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5",
            "30ee3e1110167f948a6b9946edeeb738",
        ),
        Backbone(
            "resnet50",
            "ResNet50",
            "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
            f"{_GCS}/resnet/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
            "4d473c1dd8becc155b73f8504c6f6626",
        ),
        Backbone(
            "mobilenetv2",
            "MobileNetV2",
            "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
            f"{_GCS}/mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
            None,  # Keras publishes no hash for this file
        ),
        Backbone(
            "efficientnetb0",
            "EfficientNetB0",
            "efficientnetb0_notop.h5",
            "https://storage.googleapis.com/keras-applications/efficientnetb0_notop.h5",
            "50bc09e76180e00e4465e1a485ddc09d",
        ),
    )
}


def keras_cache() -> Path:
    """Where Keras keeps downloaded application weights."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"


def file_digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify(backbone: Backbone, path: Path) -> None:
    """Raise ``WeightsMissing`` if ``path`` does not match the published hash (Keras' rule:
    64 hex digits are sha256, otherwise md5)."""
    if backbone.file_hash is None:
        return
    algorithm = "sha256" if len(backbone.file_hash) == 64 else "md5"
    actual = file_digest(path, algorithm)
    if actual != backbone.file_hash:
        raise WeightsMissing(
            f"{path} does not match the published {algorithm} of {backbone.application}'s weights "
            f"({backbone.file_hash}, got {actual}): corrupt or a different file; delete it or replace it"
        )


def resolve(backbone_name: str, weights_dir: str | Path | None = None, *, download: bool = True) -> Path:
    """The verified local weights file for ``backbone_name``; downloads into the Keras cache if
    allowed and possible, else raises ``WeightsMissing`` with the file name, hash and origin."""
    backbone = BACKBONES[backbone_name]
    places = ([Path(weights_dir)] if weights_dir else []) + [keras_cache()]
    for place in places:
        candidate = place / backbone.file_name
        if candidate.is_file():
            verify(backbone, candidate)
            return candidate
    reason = "downloading is off"
    if download:
        try:
            from keras.utils import get_file

            fetched = Path(get_file(backbone.file_name, backbone.origin, cache_subdir="models"))
            verify(backbone, fetched)
            return fetched
        except WeightsMissing:
            raise
        except Exception as error:  # noqa: BLE001  offline, proxy, disk: all mean "not available"
            first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
            reason = f"the download failed ({first_line.split(' -- ')[-1][:100]})"
    published = "no published hash"
    if backbone.file_hash:
        published = f"{'sha256' if len(backbone.file_hash) == 64 else 'md5'} {backbone.file_hash}"
    raise WeightsMissing(
        f"no ImageNet weights for {backbone.application}: {backbone.file_name} [{published}] is not in "
        f"{' or '.join(str(p) for p in places)} and {reason}; fetch it from {backbone.origin} "
        "and pass --weights-dir DIR"
    )
