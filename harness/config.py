"""benchmarks.toml → validated, frozen configuration.

Every validation error names the entry and the field (``ConfigError``), so a typo in a
50-recipe file is found at once. Loading needs only the standard library: ``bench list``
stays instant. Architecture and augmentation names are checked against the registries here,
before any training starts.
"""

from __future__ import annotations

import copy
import difflib
import fnmatch
import math
import re
import tomllib
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
    from that many training images after training (``harness.train.recalibrate_batch_norm``).
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
            raise ConfigError(f"unknown recipe {name!r}.{_suggest(name, self.recipes)}")
        return self.recipes[name]

    def profile(self, name: str) -> Profile:
        if name not in self.profiles:
            raise ConfigError(f"unknown profile {name!r}.{_suggest(name, self.profiles)}")
        return self.profiles[name]

    def train_images(self, profile_name: str) -> int:
        """Training images of a run under the profile (CIFAR-10's 50,000 less validation, or the
        profile's train_size)."""
        from harness.cost import FULL_TRAIN_IMAGES

        return self.profile(profile_name).train_size or FULL_TRAIN_IMAGES - self.data.validation_size

    def split_options(self, profile_name: str) -> dict[str, Any]:
        """The keyword arguments of ``harness.data.split_indices`` / ``prepare_split`` for a
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
                raise ConfigError(f"unknown suite {suite!r}.{_suggest(suite, self.suites)}")
            recipes = [r for r in recipes if in_suite(r.name, self.suites[suite])]
        if only is not None:
            recipes = [r for r in recipes if fnmatch.fnmatchcase(r.name, only)]
        return recipes

    def augmentation(self, name: str) -> dict[str, Any]:
        return {} if name == NO_AUGMENTATION else dict(self.augmentations[name])


def _suggest(name: str, known: Any) -> str:
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
    return f" Did you mean: {', '.join(close)}?" if close else f" Known: {', '.join(sorted(known))}."


def _check_keys(where: str, table: dict[str, Any], allowed: set[str], required: set[str]) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(f"{where}: unknown field {key!r}.{_suggest(key, allowed)}")
    for key in sorted(required - set(table)):
        raise ConfigError(f"{where}: missing field {key!r}")


def _typed(where: str, key: str, value: Any, types: tuple[type, ...]) -> Any:
    if isinstance(value, bool) and bool not in types:
        ok = False
    else:
        ok = isinstance(value, types)
    if not ok:
        names = " or ".join(t.__name__ for t in types)
        raise ConfigError(f"{where}: field {key!r} must be {names}, got {value!r}")
    return value


def _positive_int(where: str, key: str, value: Any, *, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    _typed(where, key, value, (int,))
    if value <= 0:
        raise ConfigError(f"{where}: field {key!r} must be > 0, got {value!r}")
    return value


def _parse_data_copies(table: dict[str, Any], folder: Path) -> tuple[Path, ...]:
    copies = table.get("local_copies", [])
    if not isinstance(copies, list) or not all(isinstance(c, str) for c in copies):
        raise ConfigError(f"[data]: local_copies must be a list of paths, got {copies!r}")
    return tuple((folder / Path(c).expanduser()).resolve() for c in copies)


def _parse_data(table: dict[str, Any]) -> DataConfig:
    where = "[data]"
    _check_keys(where, table, {"validation_size", "stratified", "split_seed", "local_copies"}, set())
    table = {k: v for k, v in table.items() if k != "local_copies"}
    data = DataConfig(**table)
    _positive_int(where, "validation_size", data.validation_size)
    _typed(where, "stratified", data.stratified, (bool,))
    _typed(where, "split_seed", data.split_seed, (int,))
    if data.split_seed < 0:
        raise ConfigError(f"{where}: split_seed must be ≥ 0 (a NumPy seed), got {data.split_seed}")
    return data


def _parse_profiles(table: dict[str, Any]) -> dict[str, Profile]:
    if not table:
        raise ConfigError("[profiles]: at least one profile is required (e.g. [profiles.full])")
    profiles = {}
    counts = {"max_epochs", "train_size", "validation_size", "test_size", "bn_recalibration_images"}
    allowed = counts | {"description", "epoch_fraction"}
    for name, body in table.items():
        where = f"[profiles.{name}]"
        if not RECIPE_NAME.match(name):  # it goes into tags, file names and MLflow filter strings
            raise ConfigError(f"{where}: a profile name must be lower-case letters, digits and '-', got {name!r}")
        _check_keys(where, body, allowed, {"description"})
        for key in counts:
            _positive_int(where, key, body.get(key), optional=True)
        fraction = body.get("epoch_fraction")
        if fraction is not None:
            _typed(where, "epoch_fraction", fraction, (int, float))
            if not 0 < fraction <= 1:
                raise ConfigError(
                    f"{where}: epoch_fraction is a share of each recipe's epochs in (0, 1], got {fraction!r}"
                )
            body = {**body, "epoch_fraction": float(fraction)}
        profiles[name] = Profile(name=name, **body)
    return profiles


def in_suite(name: str, patterns: tuple[str, ...]) -> bool:
    """A name is in a suite if it matches one of its globs and none of its '!glob' exclusions."""
    included = any(fnmatch.fnmatchcase(name, p) for p in patterns if not p.startswith("!"))
    return included and not any(fnmatch.fnmatchcase(name, p[1:]) for p in patterns if p.startswith("!"))


def _parse_suites(table: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    suites = {}
    for name, patterns in table.items():
        if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
            raise ConfigError(f"[suites]: suite {name!r} must be a list of name globs")
        suites[name] = tuple(patterns)
    return suites


def _parse_augmentations(table: dict[str, Any]) -> dict[str, dict[str, Any]]:
    presets = {}
    for name, body in table.items():
        where = f"[augmentations.{name}]"
        if name == NO_AUGMENTATION:
            raise ConfigError(f"{where}: the name {NO_AUGMENTATION!r} is reserved for no augmentation")
        _check_keys(where, body, set(AUGMENTATION_KEYS), set())
        for key, value in body.items():
            _typed(where, key, value, AUGMENTATION_KEYS[key])
        if body.get("fill_mode", "nearest") not in FILL_MODES:
            raise ConfigError(f"{where}: fill_mode must be one of {FILL_MODES}, got {body['fill_mode']!r}")
        if "brightness_range" in body and len(body["brightness_range"]) != 2:
            raise ConfigError(f"{where}: brightness_range must be [low, high]")
        presets[name] = dict(body)
    return presets


def _parse_training(where: str, table: dict[str, Any]) -> Training:
    where = f"{where} training"
    allowed = {"optimizer", "learning_rate", "loss", "batch_size", "epochs", "optimizer_options"}
    _check_keys(where, table, allowed, allowed - {"optimizer_options"})
    if table["optimizer"] not in OPTIMIZERS:
        raise ConfigError(
            f"{where}: unknown optimizer {table['optimizer']!r}.{_suggest(table['optimizer'], OPTIMIZERS)}"
        )
    if table["loss"] not in LOSSES:
        raise ConfigError(f"{where}: loss must be one of {LOSSES}, got {table['loss']!r}")
    learning_rate = _typed(where, "learning_rate", table["learning_rate"], (int, float))
    if not (0 < learning_rate < 10):
        raise ConfigError(f"{where}: learning_rate must be in (0, 10), got {learning_rate!r}")
    options = table.get("optimizer_options", {})
    if not isinstance(options, dict):
        raise ConfigError(f"{where}: optimizer_options must be a table, got {options!r}")
    return Training(
        optimizer=table["optimizer"],
        learning_rate=float(learning_rate),
        loss=table["loss"],
        batch_size=_positive_int(where, "batch_size", table["batch_size"]),
        epochs=_positive_int(where, "epochs", table["epochs"]),
        optimizer_options=tuple(sorted(options.items())),
    )


def _parse_callbacks(where: str, entries: Any) -> tuple[Callback, ...]:
    if not isinstance(entries, list):
        raise ConfigError(f"{where}: callbacks must be a list of tables")
    callbacks = []
    for index, entry in enumerate(entries):
        at = f"{where} callbacks[{index}]"
        if not isinstance(entry, dict) or "kind" not in entry:
            raise ConfigError(f"{at}: each callback is a table with a 'kind'")
        kind = entry["kind"]
        if kind not in CALLBACK_OPTIONS:
            raise ConfigError(f"{at}: unknown kind {kind!r}.{_suggest(kind, CALLBACK_OPTIONS)}")
        options = {k: v for k, v in entry.items() if k != "kind"}
        spec = CALLBACK_OPTIONS[kind]
        _check_keys(at, options, set(spec), {"monitor"})
        for key, value in options.items():
            _typed(at, key, value, spec[key])
        if options.get("mode", "auto") not in MODES:
            raise ConfigError(f"{at}: mode must be one of {MODES}, got {options['mode']!r}")
        # What would fail every run of the recipe, at its first epoch: caught here, once.
        if options["monitor"] not in MONITORS:
            raise ConfigError(f"{at}: monitor must be one of {MONITORS} (what fit logs), got {options['monitor']!r}")
        if "factor" in options and not 0 < options["factor"] < 1:
            raise ConfigError(f"{at}: factor must be in (0, 1) (the learning rate is multiplied by it)")
        for key in ("patience", "cooldown", "start_from_epoch", "min_delta", "min_lr"):
            if key in options and options[key] < 0:
                raise ConfigError(f"{at}: {key} must be ≥ 0, got {options[key]!r}")
        callbacks.append(Callback(kind=kind, options=tuple(sorted(options.items()))))
    return tuple(callbacks)


RECIPE_FIELDS = {
    "name",
    "base",
    "previous",
    "architecture",
    "summary",
    "source",
    "reported",
    "training",
    "callbacks",
    "augmentation",
    "architecture_options",
    "notes",
}
INHERITED = ("architecture", "architecture_options", "training", "callbacks", "augmentation")


@dataclass(frozen=True)
class _Entry:
    """One ``[[recipe]]`` table as written, and where: '<file> [[recipe]] #3 (name)'."""

    where: str
    table: dict[str, Any]


def _resolve_base(entries: list[_Entry]) -> list[_Entry]:
    """Apply ``base`` inheritance: a recipe copies its base's trained fields, then overrides.
    A base must be defined earlier: above, or in an earlier file."""
    by_name: dict[str, dict[str, Any]] = {}
    resolved = []
    for item in entries:
        where, entry = item.where, copy.deepcopy(item.table)
        base_name = entry.get("base")
        if base_name is not None:
            if base_name not in by_name:
                hint = _suggest(base_name, by_name) if by_name else ""
                raise ConfigError(
                    f"{where}: base {base_name!r} is not a recipe defined before it (above, or in an earlier file).{hint}"
                )
            base = by_name[base_name]
            for key in INHERITED:
                if key not in base:
                    continue
                if key == "training" and key in entry:
                    if not isinstance(entry[key], dict):
                        raise ConfigError(f"{where}: field 'training' must be a table")
                    entry[key] = {**base[key], **entry[key]}
                elif key not in entry:
                    entry[key] = copy.deepcopy(base[key])
        resolved.append(_Entry(where, entry))
        if isinstance(entry.get("name"), str):
            by_name[entry["name"]] = entry
    return resolved


def _parse_recipe(item: _Entry, augmentations: dict[str, Any], architectures: set[str] | None) -> Recipe:
    where, entry = item.where, item.table
    name = entry.get("name")
    _check_keys(where, entry, RECIPE_FIELDS, {"name", "architecture", "summary", "source", "training"})
    _typed(where, "name", name, (str,))
    if not RECIPE_NAME.match(name):
        raise ConfigError(f"{where}: name must be lower-case letters, digits and '-', got {name!r}")
    architecture = _typed(where, "architecture", entry["architecture"], (str,))
    if architectures is not None and architecture not in architectures:
        raise ConfigError(f"{where}: unknown architecture {architecture!r}.{_suggest(architecture, architectures)}")
    augmentation = entry.get("augmentation", NO_AUGMENTATION)
    if augmentation != NO_AUGMENTATION and augmentation not in augmentations:
        raise ConfigError(f"{where}: unknown augmentation {augmentation!r}.{_suggest(augmentation, augmentations)}")
    source = entry["source"]
    if not isinstance(source, dict):
        raise ConfigError(f"{where}: source must be a table {{report, section}}")
    _check_keys(f"{where} source", source, {"report", "section"}, {"report", "section"})
    reported = entry.get("reported", {})
    _check_keys(f"{where} reported", reported, {"test_accuracy", "params"}, set())
    accuracy = reported.get("test_accuracy")
    if accuracy is not None:
        _typed(f"{where} reported", "test_accuracy", accuracy, (int, float))
        if not (0 <= accuracy <= 1) or math.isnan(accuracy):
            raise ConfigError(f"{where} reported: test_accuracy is a fraction in [0, 1], got {accuracy!r}")
    params = _positive_int(f"{where} reported", "params", reported.get("params"), optional=True)
    options = _parse_architecture_options(where, architecture, entry.get("architecture_options", {}), architectures)
    return Recipe(
        name=name,
        architecture=architecture,
        summary=_typed(where, "summary", entry["summary"], (str,)),
        source=Source(**source),
        reported=Reported(test_accuracy=None if accuracy is None else float(accuracy), params=params),
        training=_parse_training(where, entry["training"]),
        callbacks=_parse_callbacks(where, entry.get("callbacks", [])),
        augmentation=augmentation,
        notes=_typed(where, "notes", entry.get("notes", ""), (str,)),
        base=entry.get("base"),
        architecture_options=options,
        previous=_typed(where, "previous", entry["previous"], (str,)) if "previous" in entry else entry.get("base"),
    )


def _check_previous(where: str, recipe: Recipe, before: dict[str, Recipe]) -> None:
    """An explicit ``previous`` names a recipe of the same report defined before this one."""
    if recipe.previous not in before:
        hint = _suggest(recipe.previous, before) if before else ""
        raise ConfigError(
            f"{where}: previous {recipe.previous!r} is not a recipe defined before it (above, or in an earlier file).{hint}"
        )
    if before[recipe.previous].source.report != recipe.source.report:
        raise ConfigError(
            f"{where}: previous {recipe.previous!r} comes from report {before[recipe.previous].source.report}, "
            f"not {recipe.source.report}: a step is built from a step of its own report"
        )


def _parse_architecture_options(
    where: str, architecture: str, options: Any, architectures: set[str] | None
) -> tuple[tuple[str, Any], ...]:
    """Keyword arguments for the builder: scalars, and (when builders are known) parameters it takes."""
    if not isinstance(options, dict):
        raise ConfigError(f"{where}: field 'architecture_options' must be a table")
    accepted = None
    if architectures is not None:
        import inspect

        import architectures as registry

        signature = inspect.signature(registry.get(architecture).builder).parameters
        harness_owned = ("input_shape", "num_classes", "weights", "part")  # set by the harness, not a recipe
        accepted = {name for name in signature if name not in harness_owned}
    for key, value in options.items():
        if accepted is not None and key not in accepted:
            hint = _suggest(key, accepted) if accepted else f" {architecture} takes no options."
            raise ConfigError(f"{where} architecture_options: unknown option {key!r} for {architecture}.{hint}")
        _typed(f"{where} architecture_options", key, value, (str, int, float, bool))
    return tuple(sorted(options.items()))


TOP_LEVEL = {"data", "profiles", "suites", "augmentations", "recipe", "recipe_files"}


def _read_toml(path: Path, what: str) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file ({what})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None


def _recipe_entries(path: Path, tables: Any) -> list[_Entry]:
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(f"{path}: 'recipe' must be an array of tables, written [[recipe]]")
    where = f"{path.name} [[recipe]]"
    return [_Entry(f"{where} #{index + 1} ({table.get('name', '?')})", table) for index, table in enumerate(tables)]


def load_config(path: str | Path, *, check_architectures: bool = True) -> BenchConfig:
    """Read and validate benchmarks.toml and the recipe files it lists. Raises ``ConfigError``
    naming the file, entry and field.

    Recipes come from the ``[[recipe]]`` tables of the benchmarks file, then from each file of
    its ``recipe_files`` list (paths relative to the benchmarks file) in that order; the order
    is the recipes' order everywhere (``bench list``, sweeps, suites).
    """
    path = Path(path)
    raw = _read_toml(path, "pass --config PATH")
    if "benchmark" in raw:
        raise ConfigError(f"{path}: [[benchmark]] tables are now called [[recipe]]; rename them")
    _check_keys(str(path), raw, TOP_LEVEL, set())
    augmentations = _parse_augmentations(raw.get("augmentations", {}))
    entries = _recipe_entries(path, raw.get("recipe", []))
    files = raw.get("recipe_files", [])
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise ConfigError(f"{path}: recipe_files must be a list of paths, got {files!r}")
    for name in files:
        file = path.parent / name
        recipes_raw = _read_toml(file, f"listed in recipe_files of {path}")
        _check_keys(str(file), recipes_raw, {"recipe"}, set())
        entries += _recipe_entries(file, recipes_raw.get("recipe", []))
    if not entries:
        raise ConfigError(f"{path}: no recipes: add [[recipe]] tables or list files in recipe_files")
    known_architectures = None
    if check_architectures:
        import architectures

        known_architectures = set(architectures.names())
    recipes: dict[str, Recipe] = {}
    for entry in _resolve_base(entries):
        recipe = _parse_recipe(entry, augmentations, known_architectures)
        if recipe.name in recipes:
            raise ConfigError(f"{entry.where}: duplicate recipe name {recipe.name!r}")
        if "previous" in entry.table:
            _check_previous(entry.where, recipe, recipes)
        recipes[recipe.name] = recipe
    suites = _parse_suites(raw.get("suites", {}))
    for suite, patterns in suites.items():
        for pattern in patterns:
            if not pattern.startswith("!") and not any(fnmatch.fnmatchcase(name, pattern) for name in recipes):
                close = difflib.get_close_matches(pattern, list(recipes), n=3, cutoff=0.6)
                hint = f" Did you mean: {', '.join(close)}?" if close else ""
                raise ConfigError(f"[suites] {suite}: {pattern!r} matches no recipe.{hint}")
    return BenchConfig(
        path=path,
        data=_parse_data(raw.get("data", {})),
        data_copies=_parse_data_copies(raw.get("data", {}), path.parent),
        profiles=_parse_profiles(raw.get("profiles", {})),
        suites=suites,
        augmentations=augmentations,
        recipes=recipes,
    )
