"""The benchmarks file and the recipe files it lists, read and checked into ``harness.config``'s
frozen dataclasses: every table, key and value checked (types, ranges, known names; a recipe's
``base`` resolved, its ``previous`` step checked, its architecture options against its builder),
each error naming the file, the entry and the field (``ConfigError``)."""

from __future__ import annotations

import copy
import difflib
import fnmatch
import math
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.config import (
    AUGMENTATION_KEYS,
    AUGMENTATION_RANGES,
    CALLBACK_OPTIONS,
    FILL_MODES,
    LOSSES,
    MAX_CONFIG_BYTES,
    MODES,
    MONITORS,
    NO_AUGMENTATION,
    OPTIMIZERS,
    RECIPE_NAME,
    BenchConfig,
    Callback,
    DataConfig,
    Profile,
    Recipe,
    Reported,
    Source,
    Training,
    suggest,
)
from harness.errors import ConfigError


def _shown(value: Any) -> str:
    """A value as an error message shows it: its repr, cut to a line."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _table(where: str, value: Any, key: str | None = None) -> dict[str, Any]:
    """``value`` if it is a TOML table, else a ``ConfigError`` naming ``where`` (file, entry)
    and ``key`` (the field; None where ``where`` names it already)."""
    if not isinstance(value, dict):
        field = f"field {key!r} " if key else ""
        raise ConfigError(f"{where}: {field}must be a table {{key = value, ...}}, got {_shown(value)}")
    return value


def _check_keys(where: str, table: Any, allowed: set[str], required: set[str]) -> None:
    _table(where, table)
    for key in table:
        if key not in allowed:
            raise ConfigError(f"{where}: unknown field {key!r}.{suggest(key, allowed)}")
    for key in sorted(required - set(table)):
        raise ConfigError(f"{where}: missing field {key!r}")


def _typed(where: str, key: str, value: Any, types: tuple[type, ...]) -> Any:
    """``value`` if it is one of ``types`` (a bool is not a number, a float is finite), else a
    ``ConfigError`` naming the field."""
    if isinstance(value, bool) and bool not in types:
        ok = False
    else:
        ok = isinstance(value, types)
    if not ok:
        names = " or ".join("table" if t is dict else "list" if t is list else t.__name__ for t in types)
        raise ConfigError(f"{where}: field {key!r} must be {names}, got {_shown(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where}: field {key!r} must be a finite number, got {value!r}")
    return value


def _number(where: str, key: str, value: Any) -> float:
    return _typed(where, key, value, (int, float))


def _positive_int(where: str, key: str, value: Any, *, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    _typed(where, key, value, (int,))
    if value <= 0:
        raise ConfigError(f"{where}: field {key!r} must be > 0, got {value!r}")
    return value


def _parse_data_copies(table: dict[str, Any], folder: Path, where: str) -> tuple[Path, ...]:
    copies = table.get("local_copies", [])
    if not isinstance(copies, list) or not all(isinstance(c, str) for c in copies):
        raise ConfigError(f"{where}: local_copies must be a list of paths, got {_shown(copies)}")
    return tuple((folder / Path(c).expanduser()).resolve() for c in copies)


def _parse_data(table: Any, where: str) -> DataConfig:
    _check_keys(where, table, {"validation_size", "stratified", "split_seed", "local_copies"}, set())
    table = {k: v for k, v in table.items() if k != "local_copies"}
    data = DataConfig(**table)
    _positive_int(where, "validation_size", data.validation_size)
    _typed(where, "stratified", data.stratified, (bool,))
    _typed(where, "split_seed", data.split_seed, (int,))
    if data.split_seed < 0:
        raise ConfigError(f"{where}: split_seed must be ≥ 0 (a NumPy seed), got {data.split_seed}")
    return data


def _parse_profiles(table: Any, file: str) -> dict[str, Profile]:
    _table(f"{file} [profiles]", table)
    if not table:
        raise ConfigError(f"{file} [profiles]: at least one profile is required (e.g. [profiles.full])")
    profiles = {}
    counts = {"max_epochs", "train_size", "validation_size", "test_size", "bn_recalibration_images"}
    allowed = counts | {"description", "epoch_fraction"}
    for name, body in table.items():
        where = f"{file} [profiles.{name}]"
        if not RECIPE_NAME.match(name):  # it goes into tags, file names and MLflow filter strings
            raise ConfigError(f"{where}: a profile name must be lower-case letters, digits and '-', got {name!r}")
        _check_keys(where, body, allowed, {"description"})
        _typed(where, "description", body["description"], (str,))
        for key in sorted(counts):
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


def _parse_suites(table: Any, file: str) -> dict[str, tuple[str, ...]]:
    suites = {}
    for name, patterns in _table(f"{file} [suites]", table).items():
        if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
            raise ConfigError(f"{file} [suites]: suite {name!r} must be a list of name globs, got {_shown(patterns)}")
        suites[name] = tuple(patterns)
    return suites


def _pair(where: str, key: str, value: Any, *, low_above_zero: bool) -> None:
    """[low, high]: two numbers, 0 ≤ low ≤ high (0 < low where a factor of 0 would blank the image)."""
    if not isinstance(value, list) or len(value) != 2:
        raise ConfigError(f"{where}: {key} must be [low, high], two numbers, got {_shown(value)}")
    low, high = (_number(where, key, v) for v in value)
    if low < 0 or (low_above_zero and low == 0) or low > high:
        bound = "0 < low" if low_above_zero else "0 ≤ low"
        raise ConfigError(f"{where}: {key} must be [low, high] with {bound} ≤ high, got {_shown(value)}")


def _check_augmentation_values(where: str, body: dict[str, Any]) -> None:
    """Each number of a preset in the range ImageDataGenerator gives it a meaning on [0, 1]
    images (``AUGMENTATION_RANGES``), [low, high] pairs well formed: refused here, not at every
    run's first batch (or, worse, trained on noise)."""
    for key, value in body.items():
        if key == "brightness_range":
            _pair(where, key, value, low_above_zero=False)
        elif key == "zoom_range" and isinstance(value, list):
            _pair(where, key, value, low_above_zero=True)
        elif key in AUGMENTATION_RANGES:
            low, high, closed, why = AUGMENTATION_RANGES[key]
            if not (low <= value <= high if closed else low <= value < high):
                interval = f"[{low}, {high}{']' if closed else ')'}"
                raise ConfigError(f"{where}: {key} must be in {interval} ({why}), got {value!r}")


def _parse_augmentations(table: Any, file: str) -> dict[str, dict[str, Any]]:
    presets = {}
    for name, body in _table(f"{file} [augmentations]", table).items():
        where = f"{file} [augmentations.{name}]"
        if name == NO_AUGMENTATION:
            raise ConfigError(f"{where}: the name {NO_AUGMENTATION!r} is reserved for no augmentation")
        _check_keys(where, body, set(AUGMENTATION_KEYS), set())
        for key, value in body.items():
            _typed(where, key, value, AUGMENTATION_KEYS[key])
        if body.get("fill_mode", "nearest") not in FILL_MODES:
            raise ConfigError(f"{where}: fill_mode must be one of {FILL_MODES}, got {body['fill_mode']!r}")
        _check_augmentation_values(where, body)
        presets[name] = dict(body)
    return presets


def _parse_training(where: str, table: Any) -> Training:
    where = f"{where} training"
    allowed = {"optimizer", "learning_rate", "loss", "batch_size", "epochs", "optimizer_options"}
    _check_keys(where, table, allowed, allowed - {"optimizer_options"})
    _typed(where, "optimizer", table["optimizer"], (str,))
    _typed(where, "loss", table["loss"], (str,))
    if table["optimizer"] not in OPTIMIZERS:
        raise ConfigError(
            f"{where}: unknown optimizer {table['optimizer']!r}.{suggest(table['optimizer'], OPTIMIZERS)}"
        )
    if table["loss"] not in LOSSES:
        raise ConfigError(f"{where}: loss must be one of {LOSSES}, got {table['loss']!r}")
    learning_rate = _typed(where, "learning_rate", table["learning_rate"], (int, float))
    if not (0 < learning_rate < 10):
        raise ConfigError(f"{where}: learning_rate must be in (0, 10), got {learning_rate!r}")
    options = table.get("optimizer_options", {})
    if not isinstance(options, dict):
        raise ConfigError(f"{where}: optimizer_options must be a table, got {_shown(options)}")
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
        raise ConfigError(f"{where}: callbacks must be a list of tables, got {_shown(entries)}")
    callbacks = []
    for index, entry in enumerate(entries):
        at = f"{where} callbacks[{index}]"
        if not isinstance(entry, dict) or "kind" not in entry:
            raise ConfigError(f"{at}: each callback is a table with a 'kind', got {_shown(entry)}")
        kind = _typed(at, "kind", entry["kind"], (str,))
        if kind not in CALLBACK_OPTIONS:
            raise ConfigError(f"{at}: unknown kind {kind!r}.{suggest(kind, CALLBACK_OPTIONS)}")
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
        if "name" in entry:  # a base is found by it
            _typed(where, "name", entry["name"], (str,))
        if "training" in entry:  # merged key by key into a derived recipe's: a table, checked here
            _table(f"{where} training", entry["training"])
        if base_name is not None:
            _typed(where, "base", base_name, (str,))
            if base_name not in by_name:
                hint = suggest(base_name, by_name) if by_name else ""
                raise ConfigError(
                    f"{where}: base {base_name!r} is not a recipe defined before it (above, or in an earlier file).{hint}"
                )
            base = by_name[base_name]
            for key in INHERITED:
                if key not in base:
                    continue
                if key == "training" and key in entry:
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
        raise ConfigError(f"{where}: unknown architecture {architecture!r}.{suggest(architecture, architectures)}")
    augmentation = _typed(where, "augmentation", entry.get("augmentation", NO_AUGMENTATION), (str,))
    if augmentation != NO_AUGMENTATION and augmentation not in augmentations:
        raise ConfigError(f"{where}: unknown augmentation {augmentation!r}.{suggest(augmentation, augmentations)}")
    source = entry["source"]
    _check_keys(f"{where} source", source, {"report", "section"}, {"report", "section"})
    for key in ("report", "section"):
        _typed(f"{where} source", key, source[key], (str,))
    reported = entry.get("reported", {})
    _check_keys(f"{where} reported", reported, {"test_accuracy", "params"}, set())
    accuracy = reported.get("test_accuracy")
    if accuracy is not None:
        _number(f"{where} reported", "test_accuracy", accuracy)
        if not (0 <= accuracy <= 1):
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
        hint = suggest(recipe.previous, before) if before else ""
        raise ConfigError(
            f"{where}: previous {recipe.previous!r} is not a recipe defined before it (above, or in an earlier file).{hint}"
        )
    if before[recipe.previous].source.report != recipe.source.report:
        raise ConfigError(
            f"{where}: previous {recipe.previous!r} comes from report {before[recipe.previous].source.report}, "
            f"not {recipe.source.report}: a step is built from a step of its own report"
        )


HARNESS_OWNED = ("input_shape", "num_classes", "weights", "part")  # builder arguments the harness sets, not a recipe


def builder_options(architecture: str) -> dict[str, Any]:
    """What a recipe may set in ``architecture_options`` for ``architecture``: the builder's
    keyword-only parameters but those the harness sets, each with its annotation evaluated
    (``inspect.Parameter.empty`` where there is none or it cannot be evaluated). The builder's
    signature is the schema."""
    import inspect

    import architectures as registry

    builder = registry.get(architecture).builder
    options: dict[str, Any] = {}
    for name, parameter in inspect.signature(builder).parameters.items():
        if parameter.kind is not inspect.Parameter.KEYWORD_ONLY or name in HARNESS_OWNED:
            continue
        annotation = parameter.annotation
        if isinstance(annotation, str):  # postponed (from __future__ import annotations)
            try:
                annotation = eval(annotation, builder.__globals__)  # noqa: S307  the builder's own annotation
            except Exception:  # noqa: BLE001  a name only imported for type checkers: no type to check
                annotation = inspect.Parameter.empty
        options[name] = annotation
    return options


def _fits(value: Any, annotation: Any) -> bool:
    """Whether a TOML value fits a builder parameter's annotation: a type (an int is a float,
    a bool is no number), a Literal's values, or a union of them. Anything else is not checked."""
    import types
    import typing

    if annotation is Any:
        return True
    if annotation is None or annotation is type(None):
        return value is None  # TOML has no null: such a parameter cannot be set from a recipe
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return any(value == choice and type(value) is type(choice) for choice in typing.get_args(annotation))
    if origin is typing.Union or origin is types.UnionType:
        return any(_fits(value, member) for member in typing.get_args(annotation))
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    return True


def _annotation_text(annotation: Any) -> str:
    import typing

    if typing.get_origin(annotation) is typing.Literal:
        return "one of " + ", ".join(repr(choice) for choice in typing.get_args(annotation))
    return getattr(annotation, "__name__", None) or str(annotation)


def _parse_architecture_options(
    where: str, architecture: str, options: Any, architectures: set[str] | None
) -> tuple[tuple[str, Any], ...]:
    """Keyword arguments for the builder: scalars, and (when builders are known) parameters it
    takes, of the types (or Literal values) its signature annotates."""
    import inspect

    _table(where, options, "architecture_options")
    where = f"{where} architecture_options"
    accepted = builder_options(architecture) if architectures is not None else None
    for key, value in options.items():
        if accepted is not None and key not in accepted:
            hint = suggest(key, accepted) if accepted else f" {architecture} takes no options."
            raise ConfigError(f"{where}: unknown option {key!r} for {architecture}.{hint}")
        _typed(where, key, value, (str, int, float, bool))
        annotation = accepted.get(key, inspect.Parameter.empty) if accepted is not None else inspect.Parameter.empty
        if annotation is not inspect.Parameter.empty and not _fits(value, annotation):
            raise ConfigError(
                f"{where}: {key} must be {_annotation_text(annotation)} (the signature of {architecture}), "
                f"got {_shown(value)}"
            )
    return tuple(sorted(options.items()))


TOP_LEVEL = {"data", "profiles", "suites", "augmentations", "recipe", "recipe_files"}


def _read_toml(path: Path, what: str) -> dict[str, Any]:
    """The TOML table in ``path``; a ``ConfigError`` for anything that is not a readable,
    regular, UTF-8 TOML file of at most ``MAX_CONFIG_BYTES`` (checked before reading: a folder,
    a FIFO or /dev/zero is never read)."""
    try:
        status = path.stat()
        if stat.S_ISDIR(status.st_mode):
            raise ConfigError(f"{path}: a folder, not a TOML file ({what})")
        if not stat.S_ISREG(status.st_mode):
            raise ConfigError(f"{path}: not a regular file ({what})")
        if status.st_size > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"{path}: {status.st_size:,} bytes; a config file is at most {MAX_CONFIG_BYTES:,} ({what})"
            )
        with open(path, "rb") as handle:
            blob = handle.read(MAX_CONFIG_BYTES + 1)
        if len(blob) > MAX_CONFIG_BYTES:  # it grew since
            raise ConfigError(f"{path}: more than {MAX_CONFIG_BYTES:,} bytes; a config file is at most that ({what})")
        return tomllib.loads(blob.decode("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file ({what})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read it: {error.strerror or error} ({what})") from None


def _recipe_entries(path: Path, tables: Any) -> list[_Entry]:
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(f"{path}: 'recipe' must be an array of tables, written [[recipe]]")
    where = f"{path.name} [[recipe]]"
    return [_Entry(f"{where} #{index + 1} ({table.get('name', '?')})", table) for index, table in enumerate(tables)]


def read_config(path: str | Path, *, check_architectures: bool = True) -> BenchConfig:
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
    augmentations = _parse_augmentations(raw.get("augmentations", {}), path.name)
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
    suites = _parse_suites(raw.get("suites", {}), path.name)
    for suite, patterns in suites.items():
        for pattern in patterns:
            if not pattern.startswith("!") and not any(fnmatch.fnmatchcase(name, pattern) for name in recipes):
                close = difflib.get_close_matches(pattern, list(recipes), n=3, cutoff=0.6)
                hint = f" Did you mean: {', '.join(close)}?" if close else ""
                raise ConfigError(f"{path.name} [suites] {suite}: {pattern!r} matches no recipe.{hint}")
    data = _parse_data(raw.get("data", {}), f"{path.name} [data]")
    return BenchConfig(
        path=path,
        data=data,
        data_copies=_parse_data_copies(raw.get("data", {}), path.parent, f"{path.name} [data]"),
        profiles=_parse_profiles(raw.get("profiles", {}), path.name),
        suites=suites,
        augmentations=augmentations,
        recipes=recipes,
    )
