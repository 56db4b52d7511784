"""benchmarks.toml validation: the real file loads; every error names the entry and field."""

from __future__ import annotations

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

    from harness.train import planned_epochs

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
