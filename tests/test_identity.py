"""Run identity has one owner (harness.identity), and the worker contract one module
(harness.run.protocol): identities of the real recipes never change by accident."""

from __future__ import annotations

import pytest

from harness.config import load_config
from harness.identity import RunIdentity, Variant, current_hashes, identify
from harness.run.protocol import Done, Epoch, Error, Start, WorkerPayload, decode, encode
from tests.conftest import REAL_CONFIG

FINGERPRINT = "f6a0d7027d2f098f"  # ../shared/data/cifar10.npz


@pytest.mark.parametrize(
    ("recipe", "profile", "seed", "variant", "expected"),
    [
        # (config hash, identity, group) as every store written since the first release holds them
        ("r004-step1", "full", 0, Variant(), ("cb4480821f91160b", "6321d4a9b856582e", "d51ef49d4660f91d")),
        # `cpu` recalibrates BatchNorm since issue 26: a new identity on purpose (its runs before
        # that, "bf360934c2d67be5", are a different training and never shown as these)
        (
            "r004-step10",
            "cpu",
            1,
            Variant(precision="mixed_float16"),
            ("3fdb8a07c8a4f169", "d71ba50ce0476dec", "d28816880fb77f67"),
        ),
        (
            "r003-tl-basic",
            "smoke",
            0,
            Variant(random_weights=True),
            ("803e4e0125007c41", "07d8dfc85cc482e5", "a2951a71a48ac799"),
        ),
        ("r003-tl-basic", "smoke", 0, Variant(), ("064437bae56d7b1e", "99bc9a9239a4da96", "d64e8b6b43445730")),
    ],
)
def test_identities_of_real_recipes_are_stable(recipe, profile, seed, variant, expected):
    config = load_config(REAL_CONFIG)
    identity = identify(config, config.recipe(recipe), profile, seed, FINGERPRINT, variant)
    assert (identity.config_hash, identity.identity, identity.group) == expected


def test_random_weights_only_change_transfer_recipes():
    config = load_config(REAL_CONFIG)
    cnn, transfer = config.recipe("r004-step1"), config.recipe("r003-tl-basic")
    random = Variant(random_weights=True)
    assert identify(config, cnn, "smoke", 0, FINGERPRINT, random) == identify(config, cnn, "smoke", 0, FINGERPRINT)
    assert identify(config, cnn, "smoke", 0, FINGERPRINT, random).variant == Variant()
    assert identify(config, transfer, "smoke", 0, FINGERPRINT, random).variant == random
    hashes, random_hashes = current_hashes(config, "smoke"), current_hashes(config, "smoke", random)
    assert hashes["r004-step1"] == random_hashes["r004-step1"]
    assert hashes["r003-tl-basic"] != random_hashes["r003-tl-basic"]
    assert current_hashes(config, "no-such-profile") == {} and current_hashes(config, None) == {}


def test_worker_payload_round_trips_as_json():
    config = load_config(REAL_CONFIG)
    identity = identify(
        config, config.recipe("r003-tl-basic"), "micro", 2, FINGERPRINT, Variant("mixed_bfloat16", True)
    )
    payload = WorkerPayload(
        config_path="/x/benchmarks.toml",
        identity=identity,
        tracking_uri="sqlite:////x/mlflow.db",
        experiment="cifar10-bench",
        run_id="abc",
        jit_compile="on",
        launched_at=12.5,
    )
    again = WorkerPayload.from_json(payload.to_json())
    assert again == payload and isinstance(again.identity, RunIdentity)
    assert again.identity.identity == identity.identity


@pytest.mark.parametrize(
    "event",
    [Start(epochs=30), Epoch(epoch=3, logs={"val_accuracy": 0.5}), Done(0.61, 12.0, 30), Error("diverged at epoch 2")],
)
def test_events_round_trip(event):
    assert decode(encode(event)) == event


@pytest.mark.parametrize("line", ["", "Epoch 1/3", "[1, 2]", '{"event": "nope"}', '{"event": "start"}', "{"])
def test_anything_else_on_the_events_channel_is_ignored(line):
    assert decode(line) is None
