"""benchmarks.toml validation: the real file loads; every error names the entry and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.config import ConfigError, load_config
from harness.identity import config_hash
from tests.conftest import REAL_CONFIG, TEST_CONFIG


def write(tmp_path, text):
    path = tmp_path / "b.toml"
    path.write_text(text)
    return path


def test_real_benchmarks_file_loads():
    config = load_config(REAL_CONFIG)
    assert "r004-step7" in config.recipes
    assert {"full", "quick", "smoke"} <= set(config.profiles)
    assert config.data.validation_size == 10_000


def test_base_inherits_training_and_overrides_key_by_key(test_config):
    config = load_config(test_config)
    a, b = config.recipes["tiny-a"], config.recipes["tiny-b"]
    assert b.architecture == a.architecture
    assert b.training.batch_size == 64 and b.training.loss == "categorical_crossentropy"
    assert b.reported.test_accuracy is None  # reported numbers are never inherited
    assert b.callbacks[0].option("patience") == 2


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            'optimizer = "adam"',
            'optimizer = "adamm"',
            "tiny-a) training: unknown optimizer 'adamm'. Did you mean: adam",
        ),
        ("batch_size = 64", "batch_size = 0", "(tiny-a) training: field 'batch_size' must be > 0"),
        ("batch_size = 64", 'batch_size = "64"', "(tiny-a) training: field 'batch_size' must be int"),
        ('architecture = "r004_step1"', 'architecture = "r004_stepl"', "(tiny-a): unknown architecture 'r004_stepl'"),
        (
            'augmentation = "flips"',
            'augmentation = "flip"',
            "(tiny-b): unknown augmentation 'flip'. Did you mean: flips",
        ),
        ('base = "tiny-a"', 'base = "tiny-z"', "(tiny-b): base 'tiny-z' is not a recipe defined before it"),
        ("test_accuracy = 0.6207", "test_accuracy = 62.07", "test_accuracy is a fraction in [0, 1]"),
        ('name = "tiny-b"', 'name = "tiny-a"', "duplicate recipe name 'tiny-a'"),
        ('name = "tiny-b"', 'name = "Tiny B"', "name must be lower-case letters, digits and '-'"),
        ('summary = "baseline"', 'sumary = "baseline"', "(tiny-a): unknown field 'sumary'. Did you mean: summary"),
        ("patience = 2", "patience = 2, monitr = 'x'", "callbacks[0]: unknown field 'monitr'"),
        ('kind = "early_stopping"', 'kind = "early_stop"', "callbacks[0]: unknown kind 'early_stop'"),
        (
            "horizontal_flip = true",
            "horizontal_flips = true",
            "[augmentations.flips]: unknown field 'horizontal_flips'",
        ),
        ("max_epochs = 1", "max_epochs = -1", "[profiles.smoke]: field 'max_epochs' must be > 0"),
        ('[[recipe]]\nname = "tiny-b"', '[[recipe]\nname = "tiny-b"', "not valid TOML"),
        # Configs that parse but could not train: refused once, up front, not at every run's first epoch.
        ("split_seed = 7", "split_seed = -1", "[data]: split_seed must be ≥ 0"),
        ('monitor = "val_loss"', 'monitor = "val_acuracy"', "monitor must be one of"),
        ('small = ["tiny-*"]', 'small = ["tiny-*", "tiny-c"]', "[suites] small: 'tiny-c' matches no recipe"),
        ("[profiles.smoke]", '[profiles."a\'b"]', "a profile name must be lower-case letters"),
        (
            'monitor = "val_loss", patience = 2 }',
            'monitor = "val_loss", patience = 2 }, { kind = "reduce_lr_on_plateau", monitor = "loss", factor = 2.0 }',
            "factor must be in (0, 1)",
        ),
        ("patience = 2 }", "patience = -2 }", "patience must be ≥ 0"),
        (
            'base = "tiny-a"',
            'base = "tiny-a"\nprevious = "tiny-z"',
            "(tiny-b): previous 'tiny-z' is not a recipe defined before it",
        ),
        ('base = "tiny-a"', 'base = "tiny-a"\nprevious = 3', "(tiny-b): field 'previous' must be str"),
        (
            "max_epochs = 1",
            "max_epochs = 1\nepoch_fraction = 1.5",
            "epoch_fraction is a share of each recipe's epochs in (0, 1]",
        ),
        (
            "max_epochs = 1",
            "max_epochs = 1\nbn_recalibration_images = 0",
            "field 'bn_recalibration_images' must be > 0",
        ),
    ],
)
def test_errors_name_entry_and_field(tmp_path, old, new, message):
    assert old in TEST_CONFIG
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, TEST_CONFIG.replace(old, new, 1)))
    assert message in str(error.value)


def split_into_files(tmp_path, first: str, second: str):
    """TEST_CONFIG with its two recipes moved to recipes/a.toml and recipes/b.toml."""
    head, recipes = TEST_CONFIG.split("[[recipe]]", 1)
    one, two = ("[[recipe]]" + recipes).split('[[recipe]]\nname = "tiny-b"')
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "a.toml").write_text(first.format(one))
    (tmp_path / "recipes" / "b.toml").write_text(second.format('[[recipe]]\nname = "tiny-b"' + two))
    return write(tmp_path, 'recipe_files = ["recipes/a.toml", "recipes/b.toml"]\n' + head)


def test_recipe_files_load_in_order_with_base_across_files(tmp_path, test_config):
    split = load_config(split_into_files(tmp_path, "{}", "{}"))
    inline = load_config(test_config)
    assert list(split.recipes) == ["tiny-a", "tiny-b"]
    assert split.recipes == inline.recipes  # the same recipes, wherever they are written
    profile = inline.profiles["smoke"]
    assert config_hash(split, split.recipes["tiny-b"], profile) == config_hash(
        inline, inline.recipes["tiny-b"], profile
    )


@pytest.mark.parametrize(
    ("first", "second", "message"),
    [
        ("{}", "{}".replace("{}", "{}\nsumary = 'x'"), "b.toml [[recipe]] #1 (tiny-b): unknown field 'sumary'"),
        ("{}", "[data]\n{}", "recipes/b.toml: unknown field 'data'"),
        ("{}", "{}[[recipe]\n", "b.toml: not valid TOML"),
    ],
)
def test_errors_in_a_recipe_file_name_the_file(tmp_path, first, second, message):
    with pytest.raises(ConfigError) as error:
        load_config(split_into_files(tmp_path, first, second))
    assert message in str(error.value)


def test_base_must_come_from_an_earlier_file(tmp_path):
    path = split_into_files(tmp_path, "{}", "{}")
    path.write_text(
        path.read_text().replace('["recipes/a.toml", "recipes/b.toml"]', '["recipes/b.toml", "recipes/a.toml"]')
    )
    with pytest.raises(
        ConfigError, match=r"b.toml \[\[recipe\]\] #1 \(tiny-b\): base 'tiny-a' is not a recipe defined before"
    ):
        load_config(path)


def test_missing_recipe_file_and_old_table_name(tmp_path):
    with pytest.raises(ConfigError, match="recipes/none.toml: no such file"):
        load_config(write(tmp_path, 'recipe_files = ["recipes/none.toml"]\n' + TEST_CONFIG))
    with pytest.raises(ConfigError, match=r"\[\[benchmark\]\] tables are now called \[\[recipe\]\]"):
        load_config(write(tmp_path, TEST_CONFIG.replace("[[recipe]]", "[[benchmark]]")))


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.toml")


def test_config_hash_tracks_training_not_metadata(tmp_path, test_config):
    base = load_config(test_config)
    profile = base.profiles["smoke"]
    original = config_hash(base, base.recipes["tiny-a"], profile)
    relabelled = load_config(write(tmp_path, TEST_CONFIG.replace('summary = "baseline"', 'summary = "other words"')))
    assert config_hash(relabelled, relabelled.recipes["tiny-a"], profile) == original
    retrained = load_config(write(tmp_path, TEST_CONFIG.replace("learning_rate = 0.001", "learning_rate = 0.01")))
    assert config_hash(retrained, retrained.recipes["tiny-a"], profile) != original
    # tiny-b inherits the learning rate, so its identity changes too
    assert config_hash(retrained, retrained.recipes["tiny-b"], profile) != config_hash(
        base, base.recipes["tiny-b"], profile
    )


def test_previous_defaults_to_base_and_stays_in_its_report(tmp_path, test_config):
    config = load_config(test_config)
    assert config.recipe("tiny-b").previous == "tiny-a" == config.recipe("tiny-b").base
    assert config.recipe("tiny-a").previous is None
    other = TEST_CONFIG.replace('section = "10)" }', 'section = "10)" }', 1).replace(
        'source = { report = "004_ad376a161039476f.txt", section = "10)" }',
        'source = { report = "003_x.txt", section = "10)" }\nprevious = "tiny-a"',
    )
    with pytest.raises(ConfigError, match="comes from report 004_ad376a161039476f.txt, not 003_x.txt"):
        load_config(write(tmp_path, other))
    # provenance, not training: setting it changes no run's identity
    explicit = load_config(
        write(tmp_path, TEST_CONFIG.replace('base = "tiny-a"', 'base = "tiny-a"\nprevious = "tiny-a"'))
    )
    profile = config.profiles["smoke"]
    assert config_hash(explicit, explicit.recipes["tiny-b"], profile) == config_hash(
        config, config.recipes["tiny-b"], profile
    )


def test_new_profile_settings_enter_the_hash_only_where_set(tmp_path, test_config):
    """epoch_fraction and bn_recalibration_images: a profile without them keeps its hash (stores
    stay valid); setting one is a new identity (recalibrated runs are never pooled with others)."""
    import dataclasses

    from harness.run.train import planned_epochs

    config = load_config(test_config)
    recipe, profile = config.recipes["tiny-a"], config.profiles["smoke"]
    original = config_hash(config, recipe, profile)
    recalibrated = dataclasses.replace(profile, bn_recalibration_images=2048)
    fraction = dataclasses.replace(profile, epoch_fraction=0.3333, max_epochs=None)
    assert len({original, config_hash(config, recipe, recalibrated), config_hash(config, recipe, fraction)}) == 3
    assert planned_epochs(recipe, fraction) == 10  # a third of 30, rounded up
    assert (
        planned_epochs(dataclasses.replace(recipe, training=dataclasses.replace(recipe.training, epochs=20)), fraction)
        == 7
    )
    assert planned_epochs(recipe, dataclasses.replace(fraction, max_epochs=4)) == 4
    assert planned_epochs(recipe, dataclasses.replace(fraction, epoch_fraction=0.001)) == 1
    assert profile.is_budget and not dataclasses.replace(profile, max_epochs=None, train_size=None).is_budget
    assert fraction.budget_words(40_000) == "33% of each recipe's epochs on 200 images"
    assert dataclasses.replace(profile, max_epochs=None).budget_words(40_000) == "each recipe's epochs on 200 images"


def test_select_by_suite_and_glob(test_config):
    config = load_config(test_config)
    assert [r.name for r in config.select(suite="small")] == ["tiny-a", "tiny-b"]
    assert [r.name for r in config.select(only="*-b")] == ["tiny-b"]
    with pytest.raises(ConfigError, match="unknown suite 'smal'. Did you mean: small"):
        config.select(suite="smal")


def test_real_suites_split_cnns_from_transfer_models():
    import architectures

    config = load_config(REAL_CONFIG)
    cnn = {r.name for r in config.select(suite="cnn")}
    transfer = {r.name for r in config.select(suite="transfer")}
    assert len(cnn) == 48 and not cnn & transfer and cnn | transfer == set(config.recipes)
    assert all(architectures.get(config.recipes[n].architecture).backbone is None for n in cnn)
    assert all(architectures.get(config.recipes[n].architecture).backbone is not None for n in transfer)
    per_report = [len(config.select(suite=f"report-00{i}")) for i in range(5)]
    assert per_report == [10, 12, 11, 13, 10]  # 002 and 003 include their transfer steps (and variants)


def test_suite_exclusions(tmp_path):
    config = load_config(write(tmp_path, TEST_CONFIG.replace('small = ["tiny-*"]', 'small = ["tiny-*", "!*-a"]')))
    assert [r.name for r in config.select(suite="small")] == ["tiny-b"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("{ part = 'head' }", "unknown option 'part' for r004_step1"),
        (
            "{ preprocessing = 'imagenet' }",
            "unknown option 'preprocessing' for r004_step1. r004_step1 takes no options",
        ),
        ("'imagenet'", "field 'architecture_options' must be a table"),
    ],
)
def test_architecture_options_are_checked_against_the_builder(tmp_path, options, message):
    text = TEST_CONFIG.replace(
        'architecture = "r004_step1"', f'architecture = "r004_step1"\narchitecture_options = {options}'
    )
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, text))
    assert message in str(error.value)


# Every field of a config that uses every kind of table, for the tests below.
FULL_CONFIG = TEST_CONFIG.replace(
    "horizontal_flip = true\n",
    "horizontal_flip = true\nzoom_range = [0.9, 1.1]\nbrightness_range = [0.9, 1.2]\nchannel_shift_range = 0.1\n",
    1,
) + (
    '\n[[recipe]]\nname = "tiny-tl"\nbase = "tiny-a"\narchitecture = "r003_tl_basic"\n'
    'architecture_options = { preprocessing = "imagenet" }\nsummary = "transfer"\n'
    'source = { report = "003.txt", section = "9" }\n'
    'callbacks = [{ kind = "reduce_lr_on_plateau", monitor = "val_loss", factor = 0.5, patience = 1 }]\n'
)
WRONG_VALUES = [5, -1.5, "x", True, [], [1, "a"], {}, {"a": 1}, float("nan")]


def _toml(value) -> str:
    """A value as TOML, every table inline (enough to write any config back)."""
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return "{ " + ", ".join(f"{_toml(str(k))} = {_toml(v)}" for k, v in value.items()) + " }"


def _places(document, path=()):
    """Every (path, value) of a parsed TOML document: tables' values and lists' items."""
    items = document.items() if isinstance(document, dict) else enumerate(document)
    for key, value in items:
        yield (*path, key), value
        if isinstance(value, dict | list):
            yield from _places(value, (*path, key))


def _kind(value) -> str:
    return "number" if isinstance(value, int | float) and not isinstance(value, bool) else type(value).__name__


def test_every_wrong_type_anywhere_is_one_line_naming_file_entry_and_field(tmp_path):
    """Each value of a config (main file and recipe file) replaced by values of other types or
    absurd ones: the config loads, or fails with one ConfigError line naming the file and, for a
    value of another type, the field. Never another exception (a traceback in the CLI)."""
    import copy
    import tomllib

    head, recipes = FULL_CONFIG.split("[[recipe]]", 1)
    documents = {
        "b.toml": tomllib.loads('recipe_files = ["r.toml"]\n' + head),
        "r.toml": tomllib.loads("[[recipe]]" + recipes),
    }
    assert load_config(_write_documents(tmp_path, documents)).recipes["tiny-tl"].architecture == "r003_tl_basic"
    tried = 0
    for file, document in documents.items():
        for path, old in list(_places(document)):
            field = next((str(step) for step in reversed(path) if isinstance(step, str)), "recipe")
            for new in WRONG_VALUES:
                changed = copy.deepcopy(documents)
                place = changed[file]
                for step in path[:-1]:
                    place = place[step]
                place[path[-1]] = new
                tried += 1
                try:
                    load_config(_write_documents(tmp_path, changed))
                except ConfigError as error:
                    message = str(error)
                    assert "\n" not in message and any(name in message for name in documents), (path, new, message)
                    if _kind(new) != _kind(old):
                        assert field in message, (path, new, message)
    assert tried > 500


def _write_documents(folder, documents) -> Path:
    for name, document in documents.items():
        (folder / name).write_text("".join(f"{_toml(str(k))} = {_toml(v)}\n" for k, v in document.items()))
    return folder / "b.toml"


@pytest.mark.parametrize(
    ("preset", "message"),
    [
        ('brightness_range = ["a", "b"]', "field 'brightness_range' must be int or float, got 'a'"),
        ("brightness_range = [1.2]", "brightness_range must be [low, high], two numbers"),
        ("brightness_range = [1.2, 0.8]", "brightness_range must be [low, high] with 0 ≤ low ≤ high"),
        ("zoom_range = [0.5]", "zoom_range must be [low, high], two numbers, got [0.5]"),
        ("zoom_range = [0.0, 1.1]", "zoom_range must be [low, high] with 0 < low ≤ high"),
        ("zoom_range = 1.0", "zoom_range must be in [0, 1)"),
        ("rotation_range = 10000", "rotation_range must be in [0, 180] (degrees"),
        ("rotation_range = -5", "rotation_range must be in [0, 180]"),
        ("width_shift_range = 40", "width_shift_range must be in [0, 32]"),
        ("shear_range = 90", "shear_range must be in [0, 90)"),
        ("channel_shift_range = 50", "channel_shift_range must be in [0, 1] (the harness's images are in [0, 1]"),
        ("cval = 255", "cval must be in [0, 1]"),
        ("rotation_range = nan", "field 'rotation_range' must be a finite number, got nan"),
    ],
)
def test_augmentation_values_are_checked_by_type_and_range(tmp_path, preset, message):
    """Values that pass a type check but would fail every run (a string range, a zoom of one
    number) or make its images noise (a rotation of 10000°, pixel units on [0, 1] images)."""
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, TEST_CONFIG.replace("rotation_range = 10", preset, 1)))
    assert str(error.value).startswith("b.toml [augmentations.flips]: ") and message in str(error.value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("{ preprocessing = 5 }", "preprocessing must be one of 'as_ran', 'imagenet' (the signature of r003_tl_basic)"),
        ("{ preprocessing = 'imagnet' }", "preprocessing must be one of 'as_ran', 'imagenet'"),
        (
            "{ preprocesing = 'imagenet' }",
            "unknown option 'preprocesing' for r003_tl_basic. Did you mean: preprocessing",
        ),
        ("{ weights = 'x.h5' }", "unknown option 'weights'"),  # the harness's, not a recipe's
    ],
)
def test_architecture_options_follow_the_builders_signature(tmp_path, options, message):
    text = TEST_CONFIG.replace(
        'architecture = "r004_step1"', f'architecture = "r003_tl_basic"\narchitecture_options = {options}'
    )
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, text))
    assert "(tiny-a) architecture_options: " + message in str(error.value)
    good = TEST_CONFIG.replace(
        'architecture = "r004_step1"',
        'architecture = "r003_tl_basic"\narchitecture_options = { preprocessing = "imagenet" }',
    )
    assert load_config(write(tmp_path, good)).recipes["tiny-a"].architecture_options == (("preprocessing", "imagenet"),)


@pytest.mark.parametrize("where", ["config", "recipe file"])
@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda path: path.mkdir(), "a folder, not a TOML file"),
        (lambda path: __import__("os").mkfifo(path), "not a regular file"),
        (lambda path: path.write_text("# " + "x" * (1 << 20) + "\n"), "a config file is at most 1,048,576"),
    ],
    ids=["folder", "fifo", "too-large"],
)
def test_a_config_that_is_not_a_small_regular_file_is_refused_unread(tmp_path, where, make, message):
    """A folder, a FIFO (which would block) or a file over 1 MiB as --config or as a recipe
    file: one line naming it, before anything is read (/dev/zero read until memory ran out)."""
    target = tmp_path / ("b.toml" if where == "config" else "r.toml")
    make(target)
    path = target if where == "config" else write(tmp_path, 'recipe_files = ["r.toml"]\n' + TEST_CONFIG)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value).startswith(str(target)) and message in str(error.value)


def test_dev_zero_is_refused_at_once():
    import time

    start = time.monotonic()
    with pytest.raises(ConfigError, match="/dev/zero: not a regular file"):
        load_config("/dev/zero")
    assert time.monotonic() - start < 5


def test_an_unknown_recipe_shows_the_closest_names_and_how_to_list_them_all():
    config = load_config(REAL_CONFIG)
    with pytest.raises(ConfigError) as error:
        config.recipe("r004-step77")
    message = str(error.value)
    assert message.startswith("unknown recipe 'r004-step77'. Did you mean: r004-step7")
    assert message.endswith(f"(`bench list` lists all {len(config.recipes)})")
    assert message.count(",") <= 2  # three names at most, not all 59
    with pytest.raises(ConfigError) as far:
        config.recipe("zzzz")
    assert "Did you mean:" in str(far.value) and str(far.value).count(",") <= 2 and "`bench list`" in str(far.value)
