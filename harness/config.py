"""The configuration as frozen dataclasses: the data split, profiles, suites, augmentation presets
and recipes of benchmarks.toml and its recipe files, with the vocabulary they are checked against
(optimizers, losses, callbacks, augmentation keys and ranges).

``load_config`` reads them (``harness.config_files`` checks every field; each error names the
entry and the field, ``ConfigError``, so a typo in a 50-recipe file is found at once). Loading
needs only the standard library: ``bench list`` stays instant. Architecture and augmentation
names are checked against the registries there, before any training starts.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import ConfigError

RECIPE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "nadam", "adagrad", "adadelta")
LOSSES = ("sparse_categorical_crossentropy", "categorical_crossentropy")
MODES = ("auto", "min", "max")
AUGMENTATION_KEYS = {
    "rotation_range": (int, float),
    "width_shift_range": (int, float),
    "height_shift_range": (int, float),
    "shear_range": (int, float),
    "zoom_range": (int, float, list),
    "channel_shift_range": (int, float),
    "brightness_range": (list,),
    "horizontal_flip": (bool,),
    "vertical_flip": (bool,),
    "fill_mode": (str,),
    "cval": (int, float),
    "featurewise_center": (bool,),
    "featurewise_std_normalization": (bool,),
    "samplewise_center": (bool,),
    "samplewise_std_normalization": (bool,),
    "zca_whitening": (bool,),
    "rescale": (int, float),
}
FILL_MODES = ("nearest", "constant", "reflect", "wrap")
NO_AUGMENTATION = "none"
IMAGE_SIDE = 32  # CIFAR-10 images are 32×32: augmentation acts on them before any resizing
# What each number of a preset may be, as ImageDataGenerator reads it on the harness's [0, 1]
# images: (low, high, high included?, why). A value outside would fail or make every image noise.
AUGMENTATION_RANGES = {
    "rotation_range": (0, 180, True, "degrees; 180 already turns an image any way"),
    "width_shift_range": (
        0,
        IMAGE_SIDE,
        True,
        f"a fraction of the width below 1, else pixels; {IMAGE_SIDE} moves it out",
    ),
    "height_shift_range": (
        0,
        IMAGE_SIDE,
        True,
        f"a fraction of the height below 1, else pixels; {IMAGE_SIDE} moves it out",
    ),
    "shear_range": (0, 90, False, "degrees; 90 flattens the image to a line"),
    "zoom_range": (0, 1, False, "zoom is drawn from [1 - z, 1 + z]: 1 would allow a zoom of 0"),
    "channel_shift_range": (0, 1, True, "the harness's images are in [0, 1], not 0..255"),
    "cval": (0, 1, True, "the fill value of the harness's [0, 1] images, not 0..255"),
}
MAX_CONFIG_BYTES = 1 << 20  # a benchmarks or recipe file larger than this is not a config: refused unread


@dataclass(frozen=True)
class DataConfig:
    validation_size: int = 10_000
    stratified: bool = True
    split_seed: int = 1234


@dataclass(frozen=True)
class Profile:
    """A budget: caps on epochs and data, never a change of recipe.

    ``epoch_fraction`` trains each recipe for that share of its own epochs (rounded up);
    ``bn_recalibration_images`` re-estimates every trainable BatchNorm layer's moving statistics
    from that many training images after training (``harness.run.batch_norm.recalibrate_batch_norm``).
    Both are left out of the config hash while unset, so profiles without them keep their
    identities.
    """

    name: str
    description: str
    max_epochs: int | None = None
    train_size: int | None = None
    validation_size: int | None = None
    test_size: int | None = None
    epoch_fraction: float | None = None
    bn_recalibration_images: int | None = None

    @property
    def is_budget(self) -> bool:
        """Whether the profile cuts the reports' training (fewer epochs or fewer images): its
        runs rank early learning, not what the reports trained, and test none of their claims."""
        return self.max_epochs is not None or self.train_size is not None or self.epoch_fraction is not None

    def budget_words(self, train_images: int) -> str | None:
        """'3 epochs on 2,500 images' (None for a profile that trains as the reports did);
        ``train_images`` is what a profile without a train_size trains on."""
        if not self.is_budget:
            return None
        if self.epoch_fraction is not None:
            epochs = f"{self.epoch_fraction:.0%} of each recipe's epochs"
            epochs += f" (at most {self.max_epochs})" if self.max_epochs is not None else ""
        elif self.max_epochs is not None:
            epochs = f"at most {self.max_epochs} epoch{'s' if self.max_epochs != 1 else ''}"
        else:
            epochs = "each recipe's epochs"
        return f"{epochs} on {self.train_size or train_images:,} images"


@dataclass(frozen=True)
class Training:
    optimizer: str
    learning_rate: float
    loss: str
    batch_size: int
    epochs: int
    optimizer_options: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Callback:
    """One training callback; ``options`` holds its keyword arguments (monitor, patience, …)."""

    kind: str
    options: tuple[tuple[str, Any], ...]

    def option(self, key: str, default: Any = None) -> Any:
        return dict(self.options).get(key, default)


MONITORS = ("val_loss", "val_accuracy", "loss", "accuracy")  # what model.fit logs, compiled with metrics=["accuracy"]
CALLBACK_OPTIONS: dict[str, dict[str, tuple[type, ...]]] = {
    "early_stopping": {
        "monitor": (str,),
        "patience": (int,),
        "min_delta": (int, float),
        "mode": (str,),
        "restore_best_weights": (bool,),
        "start_from_epoch": (int,),
    },
    "reduce_lr_on_plateau": {
        "monitor": (str,),
        "factor": (int, float),
        "patience": (int,),
        "min_delta": (int, float),
        "min_lr": (int, float),
        "cooldown": (int,),
        "mode": (str,),
    },
    "keep_best": {"monitor": (str,), "mode": (str,)},
}


@dataclass(frozen=True)
class Source:
    report: str
    section: str


@dataclass(frozen=True)
class Reported:
    """What the report claims; ``None`` where it states nothing."""

    test_accuracy: float | None = None
    params: int | None = None


@dataclass(frozen=True)
class Recipe:
    """Architecture + the training its report used + where it comes from and what it claims."""

    name: str
    architecture: str
    summary: str
    source: Source
    reported: Reported
    training: Training
    callbacks: tuple[Callback, ...] = ()
    augmentation: str = NO_AUGMENTATION
    notes: str = ""
    base: str | None = None
    architecture_options: tuple[tuple[str, Any], ...] = ()  # keyword arguments for the builder
    # The step of its report this recipe was built from, as the report's narrative tells it
    # (default: ``base``, the recipe it inherits its training from, which is not always that
    # step): what `bench steps` compares it with. Provenance, not training: not in the hash.
    previous: str | None = None

    def training_identity(self) -> dict[str, Any]:
        """Everything that changes what gets trained (not where it came from or what it claims)."""
        identity = {
            "architecture": self.architecture,
            "training": asdict(self.training),
            "callbacks": [asdict(c) for c in self.callbacks],
            "augmentation": self.augmentation,
        }
        if self.architecture_options:  # only when set: recipes without options keep their identity
            identity["architecture_options"] = dict(self.architecture_options)
        return identity


@dataclass(frozen=True)
class BenchConfig:
    path: Path
    data: DataConfig
    profiles: dict[str, Profile]
    suites: dict[str, tuple[str, ...]]
    augmentations: dict[str, dict[str, Any]]
    recipes: dict[str, Recipe] = field(default_factory=dict)
    # [data] local_copies, resolved against this file's folder: where CIFAR-10 is looked for
    # when neither --data nor $BENCH_DATA says. Not part of any run's identity (the data's
    # fingerprint is).
    data_copies: tuple[Path, ...] = ()

    def local_dataset(self) -> Path | None:
        """The first of ``data_copies`` that exists, else None."""
        return next((path for path in self.data_copies if path.exists()), None)

    def recipe(self, name: str) -> Recipe:
        """The recipe called ``name``; ``ConfigError`` suggesting the closest names if none."""
        if name not in self.recipes:
            raise ConfigError(f"unknown recipe {name!r}.{suggest(name, self.recipes, listing='`bench list`')}")
        return self.recipes[name]

    def profile(self, name: str) -> Profile:
        if name not in self.profiles:
            raise ConfigError(f"unknown profile {name!r}.{suggest(name, self.profiles)}")
        return self.profiles[name]

    def train_images(self, profile_name: str) -> int:
        """Training images of a run under the profile (CIFAR-10's 50,000 less validation, or the
        profile's train_size)."""
        from harness.cost.run_cost import FULL_TRAIN_IMAGES

        return self.profile(profile_name).train_size or FULL_TRAIN_IMAGES - self.data.validation_size

    def split_options(self, profile_name: str) -> dict[str, Any]:
        """The keyword arguments of ``harness.run.data.split_indices`` / ``prepare_split`` for a
        profile: the data split of [data] and the profile's budget."""
        profile = self.profile(profile_name)
        return {
            "validation_size": self.data.validation_size,
            "split_seed": self.data.split_seed,
            "stratified": self.data.stratified,
            "train_size": profile.train_size,
            "validation_subset": profile.validation_size,
            "test_size": profile.test_size,
        }

    def select(self, *, suite: str | None = None, only: str | None = None) -> list[Recipe]:
        """Recipes in file order, filtered by a suite and/or a glob over names."""
        recipes = list(self.recipes.values())
        if suite is not None:
            if suite not in self.suites:
                raise ConfigError(f"unknown suite {suite!r}.{suggest(suite, self.suites)}")
            recipes = [r for r in recipes if in_suite(r.name, self.suites[suite])]
        if only is not None:
            recipes = [r for r in recipes if fnmatch.fnmatchcase(r.name, only)]
        return recipes

    def augmentation(self, name: str) -> dict[str, Any]:
        return {} if name == NO_AUGMENTATION else dict(self.augmentations[name])


SHOWN_NAMES = 8  # a list of known names longer than this is not printed whole


def suggest(name: str, known: Any, *, listing: str | None = None) -> str:
    """The closest known names (all of them when there are few); ``listing``: the command that
    lists them all, named when they are not all shown."""
    known = [str(k) for k in known]
    if not known:
        return " None is defined."
    close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.5)
    if not close and len(known) <= SHOWN_NAMES:
        return f" Known: {', '.join(sorted(known))}."
    if not close:
        close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.0)
    rest = f" ({listing} lists all {len(known)})" if listing and len(known) > len(close) else ""
    return f" Did you mean: {', '.join(close)}?{rest}"


def in_suite(name: str, patterns: tuple[str, ...]) -> bool:
    """A name is in a suite if it matches one of its globs and none of its '!glob' exclusions."""
    included = any(fnmatch.fnmatchcase(name, p) for p in patterns if not p.startswith("!"))
    return included and not any(fnmatch.fnmatchcase(name, p[1:]) for p in patterns if p.startswith("!"))


def load_config(path: str | Path, *, check_architectures: bool = True) -> BenchConfig:
    """Read and validate benchmarks.toml and the recipe files it lists (``harness.config_files``).
    Raises ``ConfigError`` naming the file, entry and field.

    Recipes come from the ``[[recipe]]`` tables of the benchmarks file, then from each file of
    its ``recipe_files`` list (paths relative to the benchmarks file) in that order; the order
    is the recipes' order everywhere (``bench list``, sweeps, suites).
    """
    from harness.config_files import read_config

    return read_config(path, check_architectures=check_architectures)
