"""Per-run records under results/runs: written by `bench leaderboard --publish`, read by the
leaderboard and the step table beside the store (or without one), imported into a store."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.config import load_config
from harness.errors import RecordError
from harness.identity import identify
from harness.results import records as results
from harness.store.recipe_params import parent_params, recipe_params
from harness.store.schema import (
    METRIC_EPOCHS_RUN,
    METRIC_IMAGES_PER_SECOND,
    METRIC_TEST_ACCURACY,
    METRIC_TEST_LOSS,
    METRIC_TRAIN_SECONDS,
    PARAM_COMMIT,
    PARAM_HARDWARE,
    PARAM_PARAMS,
    TAG_IMPORTED,
    TAG_RESUMED_FROM_EPOCH,
)
from harness.store.tracking import Tracker
from tests.conftest import REAL_CONFIG, REPO

START = 1_790_000_000_000  # ms: when the stand-in runs started


def curves(seed: int, epochs: int) -> dict[str, list[float]]:
    """Per-epoch values as Keras logs them: float32 numbers."""
    rising = np.linspace(0.3, 0.7, epochs, dtype=np.float32) + np.float32(seed / 1000)
    return {
        "accuracy/train": [float(v) for v in rising + np.float32(0.05)],
        "accuracy/validation": [float(v) for v in rising],
        "loss/train": [float(v) for v in np.float32(2.0) - rising],
        "loss/validation": [float(v) for v in np.float32(2.1) - rising],
    }


def log_trained_run(
    tracker, config, name: str, seed: int, accuracy: float, *, epochs: int = 3, start: int = START, **tags
) -> str:
    """A finished child run as a worker leaves it (params, curves, final metrics, times), without
    training. Returns its run id."""
    recipe = config.recipe(name)
    identity = identify(config, recipe, "smoke", seed, "synthetic-data")
    parent = tracker.parent_run(identity, description=recipe.summary, params=parent_params(config, recipe, identity))
    child = tracker.child_run(identity, parent, start_time=start + 1000 * seed)
    params = recipe_params(config, recipe, config.profile("smoke"))
    params.update({"seed": str(seed), PARAM_COMMIT: "abc1234", PARAM_HARDWARE: "CPU only: test ×2 cores"})
    params.update({"keras_backend": "tensorflow", "version.keras": "3.15.1", "precision": "float32"})
    params[PARAM_PARAMS] = "92074"
    tracker.log_params(child, params)
    tracker.log_curves(child, curves(seed, epochs))
    tracker.log_metrics(
        child,
        {
            METRIC_TEST_ACCURACY: accuracy,
            METRIC_TEST_LOSS: float(np.float32(1.1 + seed / 10)),
            METRIC_TRAIN_SECONDS: 12.5 + seed,
            METRIC_IMAGES_PER_SECOND: 480.0,
            METRIC_EPOCHS_RUN: float(epochs),
        },
    )
    for key, value in tags.items():
        tracker.set_tag(child, key, value)
    tracker.finish(child, end_time=start + 1000 * seed + 60_000)
    return child


@pytest.fixture
def store(tmp_path):
    return f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"


@pytest.fixture
def tracker(store, tmp_path):
    (tmp_path / "store").mkdir()
    return Tracker(store)


def bench(*arguments: str):
    return CliRunner().invoke(main, [*arguments])


def board(test_config, *options: str) -> list[dict]:
    result = bench("--config", str(test_config), "leaderboard", "--profile", "smoke", "--format", "json", *options)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def record_files(folder: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in sorted(folder.rglob("seed-*.json"))}


def test_a_published_record_reads_back_as_the_run_it_was(tmp_path, test_config, tracker, store):
    config = load_config(test_config)
    run_id = log_trained_run(tracker, config, "tiny-a", 0, 0.6125, **{TAG_RESUMED_FROM_EPOCH: "2"})
    published = bench("--config", str(test_config), "--tracking-uri", store, "leaderboard", "--profile", "smoke",
                      "--publish")  # fmt: skip
    assert published.exit_code == 0, published.output
    assert "results/runs: 1 written, 0 unchanged" in published.output
    [path] = record_files(tmp_path / "results")
    identity = identify(config, config.recipe("tiny-a"), "smoke", 0, "synthetic-data")
    assert path == tmp_path / "results" / "runs" / "smoke" / "cpu" / "tiny-a" / f"seed-0-{identity.identity}.json"

    run = tracker.get_run(run_id)
    record = json.loads(path.read_text())
    assert record == results.record_of(tracker, run, made_by=record["made_by"])  # the file is the run, whole
    assert record["made_by"].startswith("bench leaderboard --profile smoke --publish (harness ")
    assert record["identity"]["key"] == identity.identity and record["identity"]["config_hash"] == identity.config_hash
    assert record["identity"]["variant"] == {
        "precision": "float32", "random_weights": False, "device": "cpu", "backend": "tensorflow",
        "deterministic": False,
    }  # fmt: skip
    assert record["run"] == {
        "run_id": run_id, "status": "FINISHED", "started": "2026-09-21T14:13:20.000Z",
        "finished": "2026-09-21T14:14:20.000Z", "resumed": True, "resumed_from_epoch": 2,
    }  # fmt: skip
    assert record["params"] == run.data.params and record["reconstructed"] is None
    assert record["metrics"][METRIC_TEST_ACCURACY] == 0.6125 and record["metrics"][METRIC_TEST_LOSS] == 1.1
    assert "accuracy/validation" not in record["metrics"]  # per-epoch values are curves, not final metrics
    # Curves: every epoch, float32 values written as float32's shortest text (exact at float32).
    logged = curves(0, 3)
    assert set(record["curves"]) == set(logged)
    for name, values in logged.items():
        assert record["curves"][name] == [float(str(np.float32(v))) for v in values]
        assert [np.float32(v) for v in record["curves"][name]] == [np.float32(v) for v in values]
    assert '"accuracy/validation": [0.3, 0.5, 0.7]' in path.read_text()  # one line per curve

    # Read back as a run: what the leaderboard reads from a store's child run.
    again = results.read_record(path)
    assert again.record == record and again.data.params == run.data.params
    assert again.data.tags == {
        k: v for k, v in run.data.tags.items() if k.startswith("bench.") and k != "bench.command"
    }
    assert again.info.start_time == run.info.start_time and again.info.end_time == run.info.end_time
    assert again.data.metrics == {k: v for k, v in record["metrics"].items()}


def test_publishing_twice_leaves_every_file_as_it_is(tmp_path, test_config, tracker, store):
    config = load_config(test_config)
    for seed, value in enumerate([0.61, 0.63, 0.6]):
        log_trained_run(tracker, config, "tiny-a", seed, value)
    command = ["--config", str(test_config), "--tracking-uri", store, "leaderboard", "--profile", "smoke", "--publish"]
    first = bench(*command)
    assert first.exit_code == 0 and "3 written, 0 unchanged" in first.output
    files = record_files(tmp_path / "results")
    stamps = {path: path.stat().st_mtime_ns for path in files}
    second = bench(*command)
    assert second.exit_code == 0 and "0 written, 3 unchanged" in second.output
    assert record_files(tmp_path / "results") == files
    assert {path: path.stat().st_mtime_ns for path in files} == stamps  # not even rewritten
    # Read together with the store, each run counts once.
    assert [(row["recipe"], row["n"]) for row in board(test_config, "--tracking-uri", store)] == [("tiny-a", 3)]


def test_another_run_of_the_same_identity_is_reported_and_never_written_over(tmp_path, test_config, tracker, store):
    config = load_config(test_config)
    log_trained_run(tracker, config, "tiny-a", 0, 0.61)
    command = ["--config", str(test_config), "leaderboard", "--profile", "smoke", "--publish"]
    assert bench("--tracking-uri", store, *command).exit_code == 0
    files = record_files(tmp_path / "results")
    # Another store (another machine) trained the same identity to another result, and seed 1.
    (tmp_path / "other").mkdir()
    other = Tracker(f"sqlite:///{tmp_path / 'other' / 'mlflow.db'}")
    log_trained_run(other, config, "tiny-a", 0, 0.64)
    log_trained_run(other, config, "tiny-a", 1, 0.62)
    result = bench("--tracking-uri", other.tracking_uri, *command)
    assert result.exit_code == 1
    [conflict] = [line for line in result.output.splitlines() if "kept (delete it to publish this run)" in line]
    [path] = files
    assert str(path.relative_to(tmp_path)) in conflict and "61.00%" in conflict and "64.00%" in conflict
    assert "1 written, 0 unchanged, 1 kept (another run of the same identity)" in result.output
    assert "1 record(s) kept as they were" in result.output.splitlines()[-1]
    assert path.read_bytes() == files[path]  # untouched
    assert len(record_files(tmp_path / "results")) == 2  # seed 1 was written all the same


def test_a_run_in_the_store_and_in_results_counts_once(tmp_path, test_config, tracker, store):
    """Seeds 0 and 1 in the store, seeds 1 and 2 as records (seed 1 published from another store
    with another value, and finished earlier): the union has three seeds, and seed 1 is the
    store's (the earliest run of an identity would be the record's)."""
    config = load_config(test_config)
    (tmp_path / "elsewhere").mkdir()
    elsewhere = Tracker(f"sqlite:///{tmp_path / 'elsewhere' / 'mlflow.db'}")
    log_trained_run(elsewhere, config, "tiny-a", 1, 0.50, start=START - 3_600_000)
    log_trained_run(elsewhere, config, "tiny-a", 2, 0.62, start=START - 3_600_000)
    published = bench("--config", str(test_config), "--tracking-uri", elsewhere.tracking_uri, "leaderboard",
                      "--profile", "smoke", "--publish")  # fmt: skip
    assert published.exit_code == 0, published.output
    log_trained_run(tracker, config, "tiny-a", 0, 0.60)
    log_trained_run(tracker, config, "tiny-a", 1, 0.61)

    [both] = board(test_config, "--tracking-uri", store)
    assert both["n"] == 3 and both["seeds"] == [0, 1, 2] and both["values"] == [0.60, 0.61, 0.62]
    [stored] = board(test_config, "--tracking-uri", store, "--source", "store")
    assert stored["values"] == [0.60, 0.61]
    [recorded] = board(test_config, "--tracking-uri", store, "--source", "results")
    assert recorded["values"] == [0.50, 0.62]
    text = bench("--config", str(test_config), "--tracking-uri", store, "leaderboard", "--profile", "smoke").output
    assert "Rows from an MLflow store (2 runs) and results/runs (1 record)." in text


def test_a_fresh_clone_prints_the_records_and_creates_no_store(tmp_path, test_config, tracker, store, monkeypatch):
    config = load_config(test_config)
    for name, values in {"tiny-a": [0.61, 0.63, 0.6], "tiny-b": [0.55, 0.58]}.items():
        for seed, value in enumerate(values):
            log_trained_run(tracker, config, name, seed, value)
    command = ["--config", str(test_config), "--tracking-uri", store, "leaderboard", "--profile", "smoke"]
    assert bench(*command, "--publish").exit_code == 0
    expected = bench(*command, "--format", "markdown", "--source", "store").stdout

    clone = tmp_path / "clone"
    clone.mkdir()
    shutil.copy(test_config, clone / "benchmarks.toml")
    shutil.copytree(tmp_path / "results", clone / "results")
    monkeypatch.chdir(clone)  # the default store would be ./mlflow.db: there is none
    shown = bench("leaderboard", "--profile", "smoke", "--format", "markdown")
    assert shown.exit_code == 0, shown.output
    assert shown.stdout == expected
    assert "Rows from results/runs (5 records)." in shown.output
    steps = bench("steps", "--profile", "smoke", "--format", "markdown")
    assert steps.exit_code == 0 and "| tiny-b | tiny-a | 2/3 |" in steps.stdout
    assert sorted(p.name for p in clone.iterdir()) == ["benchmarks.toml", "results"]  # no store, no lock, no mlruns
    # Asked for the store alone, the missing store is the error it always was.
    alone = bench("leaderboard", "--profile", "smoke", "--source", "store")
    assert alone.exit_code == 1 and "no MLflow store at sqlite:///" in alone.output
    assert not (clone / "mlflow.db").exists()
    shutil.rmtree(clone / "results")
    neither = bench("leaderboard", "--profile", "smoke")
    assert (
        neither.exit_code == 1 and "no MLflow store at" in neither.output and "no run records under" in neither.output
    )
    refused = bench("leaderboard", "--profile", "smoke", "--publish", "--source", "results")
    assert refused.exit_code == 2 and "needs --source store or both" in refused.output


def test_import_then_the_store_gives_the_same_rows(tmp_path, test_config, tracker, store):
    config = load_config(test_config)
    for name, values in {"tiny-a": [0.61, 0.63, 0.6], "tiny-b": [0.55, 0.58]}.items():
        for seed, value in enumerate(values):
            log_trained_run(tracker, config, name, seed, value, epochs=4)
    assert bench("--config", str(test_config), "--tracking-uri", store, "leaderboard", "--profile", "smoke",
                 "--publish").exit_code == 0  # fmt: skip
    expected = board(test_config, "--source", "results")

    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    imported = bench("--config", str(test_config), "--tracking-uri", fresh, "import")
    assert imported.exit_code == 0, imported.output
    assert "imported 5 record(s), 0 already in the store (skipped)" in imported.output
    assert board(test_config, "--tracking-uri", fresh, "--source", "store") == expected
    again = bench("--config", str(test_config), "--tracking-uri", fresh, "import", str(tmp_path / "results"))
    assert "imported 0 record(s), 5 already in the store (skipped)" in again.output

    client = Tracker(fresh).client
    runs = client.search_runs([client.get_experiment_by_name("cifar10-bench").experiment_id])
    children = [r for r in runs if r.data.tags["bench.kind"] == "child"]
    parents = [r for r in runs if r.data.tags["bench.kind"] == "parent"]
    assert len(children) == 5 and len(parents) == 2 and all(r.info.status == "FINISHED" for r in runs)
    original = {r.data.tags["bench.identity"]: r for r in tracker.child_runs()}
    for child in children:
        assert child.data.tags[TAG_IMPORTED].startswith("results/runs/smoke/cpu/")
        source = original[child.data.tags["bench.identity"]]
        assert child.data.params == source.data.params
        assert child.info.start_time == source.info.start_time and child.info.end_time == source.info.end_time
        assert child.data.tags["mlflow.source.git.commit"] == "abc1234"  # the run's code, not the importer's
        history = [m.value for m in client.get_metric_history(child.info.run_id, "accuracy/validation")]
        assert [np.float32(v) for v in history] == [np.float32(v) for v in curves(int(child.data.tags["bench.seed"]), 4)["accuracy/validation"]]  # fmt: skip
    for parent in parents:
        assert parent.data.params["architecture"] == "r004_step1" and parent.data.metrics["board/3_n"] in (2, 3)
        bands = {a.path for a in client.list_artifacts(parent.info.run_id, "seed_bands")}
        assert "seed_bands/learning_curves.png" in bands  # drawn from the records' curves
    # And the imported runs are records already: publishing them writes nothing.
    republished = bench("--config", str(test_config), "--tracking-uri", fresh, "leaderboard", "--profile", "smoke",
                        "--publish")  # fmt: skip
    assert "0 written, 0 unchanged; 5 runs are records already" in republished.output


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: r["metrics"].update({METRIC_TEST_ACCURACY: None}), "a record is a FINISHED run with accuracy/test"),
        (lambda r: r["identity"].update(seed=5), "does not match the fields it is made of"),
        (lambda r: r.update(schema=2), "record schema 2; this harness reads 1"),
        (lambda r: r.pop("identity"), "not a run record (no 'identity')"),
    ],
)
def test_a_record_that_does_not_hold_together_is_one_line_naming_it(tmp_path, test_config, edit, message):
    record = json.loads(sorted((REPO / "results" / "runs").rglob("seed-*.json"))[0].read_text())
    edit(record)
    folder = tmp_path / "results" / "runs" / "full" / "cpu" / "x"
    folder.mkdir(parents=True)
    (folder / "seed-0-bad.json").write_text(json.dumps(record))
    result = bench("--config", str(test_config), "leaderboard", "--source", "results")
    assert result.exit_code == 1 and "Traceback" not in result.output
    [line] = result.output.splitlines()  # one line, naming the file and what is wrong
    assert "results/runs/full/cpu/x/seed-0-bad.json: " in line and message in line


def test_a_record_of_100_epochs_is_a_few_kilobytes():
    """A real recipe's params and four curves of 100 epochs: the growth of results/ per run."""
    config = load_config(REAL_CONFIG)
    recipe = config.recipe("r004-step2")
    identity = identify(config, recipe, "full", 0, "f6a0d7027d2f098f")
    rng = np.random.default_rng(0)
    params = {**recipe_params(config, recipe, config.profile("full")), "seed": "0", PARAM_COMMIT: "e919694"}
    record = {
        "schema": 1,
        "made_by": "bench leaderboard --profile full --publish (harness 477afb3)",
        "identity": results.identity_fields(identity),
        "run": {
            "run_id": "0" * 32,
            "status": "FINISHED",
            "started": results.iso(START),
            "finished": results.iso(START),
            "resumed": False,
            "resumed_from_epoch": None,
        },  # fmt: skip
        "metrics": {METRIC_TEST_ACCURACY: 0.6999, METRIC_TRAIN_SECONDS: 2067.0863400093326},
        "curves": {
            name: [results.compact(float(np.float32(v))) for v in rng.random(100)] for name in results.CURVES[:4]
        },
        "params": params,
        "reconstructed": None,
    }
    size = len(results.dumps(record).encode())
    assert size < 8_000, size


def test_the_readme_full_budget_blocks_are_what_the_records_give(tmp_path):
    """The README's full-budget tables, regenerated from results/runs alone (no store): unchanged."""
    readme = tmp_path / "README.md"
    shutil.copy(REPO / "README.md", readme)
    base = ["--config", str(REAL_CONFIG), "--tracking-uri", f"sqlite:///{tmp_path / 'none.db'}"]
    for command in ("leaderboard", "steps"):
        result = bench(*base, command, "--profile", "full", "--min-seeds", "3", "--update-readme", str(readme))
        assert result.exit_code == 0, result.output
        assert "already up to date" in result.output, f"README's {command}:full block differs from results/runs"
    from collections import Counter

    from harness.store.schema import TAG_RECIPE

    records = [run for run in results.read_records(REPO / "results") if run.data.tags.get("bench.profile") == "full"]
    seeds = Counter(run.data.tags[TAG_RECIPE] for run in records)
    shown = [run for run in records if seeds[run.data.tags[TAG_RECIPE]] >= 3]  # --min-seeds 3
    reconstructed = sum(run.reconstructed for run in shown)
    assert f"Rows from results/runs ({len(shown)} records, {reconstructed} reconstructed)." in readme.read_text()
    assert not (tmp_path / "none.db").exists()


def test_the_reconstructed_records_hold_only_what_the_old_board_gave(tmp_path):
    """21 records, no curves, each seed's accuracy its own; the rest is the recipe's, apart. (results/
    grows with every published run: only the reconstructed records are counted here.)"""
    runs = [run for run in results.read_records(REPO / "results") if run.reconstructed]
    assert len(runs) == 21
    for run in runs:
        record = run.record
        assert record["curves"] is None and record["params"] == {} and set(record["metrics"]) == {METRIC_TEST_ACCURACY}
        assert record["run"]["started"] is None and record["run"]["run_id"] is None
        assert record["reconstructed"]["from"] == "results/full-cpu-cpu-only-amd-epyc-2-cores.json at commit 6d06f2b"
        assert record["made_by"].startswith("python benchmarks/reconstruct_records.py")
        # Read as a run, the recipe's values stand in where the seed's are unknown.
        assert (
            run.data.metrics[METRIC_TRAIN_SECONDS] == record["reconstructed"]["recipe"]["metrics"][METRIC_TRAIN_SECONDS]
        )
        assert run.data.tags["bench.reconstructed"] == "true"


@pytest.mark.slow  # imports 21 records into a store (about 20 s)
def test_reconstructed_records_import_without_curves(tmp_path):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    folder = tmp_path / "results"  # only the reconstructed records: results/ grows with every published run
    for run in results.read_records(REPO / "results"):
        if run.reconstructed:
            target = folder / run.path.relative_to(REPO / "results")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(run.path, target)
    result = bench("--config", str(REAL_CONFIG), "--tracking-uri", store, "import", str(folder))
    assert result.exit_code == 0 and "imported 21 record(s) (21 reconstructed, without curves)" in result.output
    tracker = Tracker(store)
    for child in tracker.child_runs("full"):
        assert (
            child.data.tags["bench.reconstructed"] == "true"
            and "Reconstructed:" in child.data.tags["mlflow.note.content"]
        )
        assert tracker.metric_history(child.info.run_id, "accuracy/validation") == []
    for parent in tracker.parent_runs("full").values():
        assert tracker.client.list_artifacts(parent, "seed_bands") == []  # no curves: no learning-curve plot
    shown = bench("--config", str(REAL_CONFIG), "--tracking-uri", store, "leaderboard", "--profile", "full",
                  "--source", "store", "--min-seeds", "3", "--format", "markdown")  # fmt: skip
    read = bench("--config", str(REAL_CONFIG), "leaderboard", "--profile", "full", "--source", "results",
                 "--results", str(folder), "--min-seeds", "3", "--format", "markdown")  # fmt: skip
    rows = [[line for line in out.stdout.splitlines() if line.startswith("|")] for out in (shown, read)]
    assert len(rows[0]) > 2 and rows[0] == rows[1]  # the store gives the table the records give


def test_compact_keeps_float32_values_exact_and_others_whole():
    assert results.compact(float(np.float32(0.7029))) == 0.7029  # a Keras value: float32's shortest text
    assert results.compact(0.7029) == 0.7029 and results.compact(2067.0863400093326) == 2067.0863400093326
    assert results.compact(float("nan")) is None and results.compact(float("inf")) is None
    with pytest.raises(RecordError, match="cannot read it as a run record"):
        results.read_record(REPO / "README.md")


def test_a_record_of_the_same_run_is_refreshed_and_another_run_is_kept(tmp_path):
    """What decides between the two when a file exists: the MLflow run id it holds."""
    record = json.loads(sorted((REPO / "results" / "runs").rglob("seed-*.json"))[0].read_text())
    record["run"]["run_id"] = "a" * 32
    assert results.write_records(tmp_path, [record]).written
    path = results.record_path(tmp_path, results.as_run(record, Path("x")).identity)
    refreshed = json.loads(json.dumps(record))
    refreshed["metrics"][METRIC_TEST_LOSS] = 1.25  # the same run, exported again with more in it
    assert results.write_records(tmp_path, [refreshed]).written == [path]
    assert json.loads(path.read_text()) == refreshed
    other = json.loads(json.dumps(refreshed))
    other["run"]["run_id"] = "b" * 32
    report = results.write_records(tmp_path, [other])
    assert not report.written and len(report.conflicts) == 1 and json.loads(path.read_text()) == refreshed
    assert results.write_records(tmp_path, [dict(refreshed, made_by="another command")]).unchanged == [path]


def test_the_terminal_leaderboard_fits_100_columns_and_wide_shows_every_column(monkeypatch):
    """At 100 columns (COLUMNS, as a pipe has no terminal width) the default table keeps every
    essential figure whole; --wide adds the rest (issue 28: at 100 columns every figure was cut)."""
    monkeypatch.setenv("COLUMNS", "100")
    command = ("--config", str(REAL_CONFIG), "leaderboard", "--profile", "full", "--source", "results")
    compact = bench(*command)
    assert compact.exit_code == 0, compact.output
    lines = compact.stdout.splitlines()
    assert max(len(line) for line in lines) <= 100 and "…" not in compact.stdout
    row = next(line for line in lines if " r004-step2 " in line)
    # r004-step2's own figures (its three records); its claim mark and p depend on the rest of the board
    assert "69.93 ± 0.06" in row and "[69.78, 70.08]" in row and "71.51 " in row and " p=" in row
    assert "69.87–69.99" not in compact.stdout and "--wide adds min–max" in " ".join(compact.stdout.split())
    monkeypatch.setenv("COLUMNS", "250")
    wide = bench(*command, "--wide")
    assert "min–max" in wide.stdout and "106,538" in wide.stdout and "69.87–69.99" in wide.stdout
