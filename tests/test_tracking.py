"""The MLflow layout against a real sqlite store in tmp_path."""

from __future__ import annotations

import pytest

from harness.identity import RunIdentity
from harness.store.schema import TAG_CLAIM, TAG_ERROR, TAG_HEARTBEAT, TAG_PARENT
from harness.store.tracking import Tracker


@pytest.fixture
def tracker(tmp_path):
    return Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")


def identity(seed: int, config_hash: str = "abc") -> RunIdentity:
    return RunIdentity(
        recipe="tiny-a", profile="smoke", seed=seed, config_hash=config_hash, data_fingerprint="fp", report="r.txt"
    )


def test_artifacts_go_next_to_the_database(tracker, tmp_path):
    experiment = tracker.client.get_experiment(tracker.experiment_id)
    assert experiment.artifact_location == (tmp_path / "mlruns").as_uri()


def test_parent_child_identity_and_aggregates(tracker):
    parent = tracker.parent_run(identity(0), description="baseline")
    assert tracker.parent_run(identity(1), description="baseline") == parent  # same group, one parent
    assert tracker.parent_run(identity(0, "new"), description="x") != parent  # changed recipe, new group
    for seed, accuracy in [(0, 0.5), (1, 0.7)]:
        child = tracker.child_run(identity(seed), parent)
        assert tracker.client.get_run(child).data.tags[TAG_PARENT] == parent
        tracker.log_metrics(child, {"test_accuracy": accuracy})
        tracker.client.set_terminated(child, "FINISHED")
    failed = tracker.child_run(identity(2), parent)
    tracker.fail(failed, "diverged at epoch 3")
    run = tracker.client.get_run(failed)
    assert run.info.status == "FAILED" and run.data.tags[TAG_ERROR] == "diverged at epoch 3"

    assert tracker.finished_identities() == {identity(0).identity, identity(1).identity}
    assert {TAG_CLAIM, TAG_HEARTBEAT} <= set(tracker.client.get_run(parent).data.tags)  # its election's
    assert tracker.update_parent(parent, identity(0).group) == "FINISHED"
    assert tracker.client.get_run(parent).info.status == "FINISHED"
    assert not {TAG_CLAIM, TAG_HEARTBEAT} & set(tracker.client.get_run(parent).data.tags)  # an ended parent's are gone
    assert not tracker.client.get_run(parent).data.metrics  # its figures are the board's (publish_board_metrics)


@pytest.mark.parametrize(
    ("ended", "status", "why"),
    [(["KILLED"], "KILLED", "(1 killed)"), (["FAILED", "KILLED"], "FAILED", "(1 failed, 1 killed)")],
)
def test_a_parent_without_a_finished_seed_is_not_finished(tracker, ended, status, why):
    """A parent whose only seed was interrupted showed FINISHED with n = 0: it now ends as its seeds
    did, saying why; a seed that finishes later makes it FINISHED and clears the reason."""
    parent = tracker.parent_run(identity(0), description="")
    for seed, end in enumerate(ended):
        child = tracker.child_run(identity(seed), parent)
        tracker.fail(child, "interrupted by the user", status=end)
    assert tracker.update_parent(parent, identity(0).group) == status
    run = tracker.client.get_run(parent)
    assert run.info.status == status and run.data.tags[TAG_ERROR] == f"no seed finished with a test accuracy {why}"
    child = tracker.child_run(identity(5), parent)
    tracker.log_metrics(child, {"accuracy/test": 0.5})
    tracker.finish(child)
    assert tracker.update_parent(parent, identity(0).group) == "FINISHED"
    assert TAG_ERROR not in tracker.client.get_run(parent).data.tags


def test_an_ended_run_loses_its_claim_a_running_one_keeps_it(tracker):
    """bench.claim and bench.heartbeat describe the process supervising a RUNNING run: removed
    once it ended, kept while it runs (its results may still be on their way from disk)."""
    parent = tracker.parent_run(identity(0), description="")
    ended, running = (tracker.child_run(identity(seed), parent, owner="host:1") for seed in (0, 1))
    tracker.finish(ended)
    for run_id in (ended, running):
        tracker.release(run_id)
    assert not {"bench.claim", "bench.heartbeat"} & set(tracker.client.get_run(ended).data.tags)
    assert {"bench.claim", "bench.heartbeat"} <= set(tracker.client.get_run(running).data.tags)


def test_fail_never_overwrites_a_finished_run(tracker):
    parent = tracker.parent_run(identity(0), description="")
    child = tracker.child_run(identity(0), parent)
    tracker.client.set_terminated(child, "FINISHED")
    tracker.fail(child, "late failure")
    assert tracker.client.get_run(child).info.status == "FINISHED"


def test_runs_fill_the_ui_columns_and_children_are_named_seed_first(tracker):
    from harness.store.tracking import DataInput

    data = DataInput(fingerprint="0123456789abcdef", source="/data/cifar10.npz")
    parent = tracker.parent_run(identity(0), description="baseline", params={"architecture": "r004_step1"}, data=data)
    child = tracker.child_run(identity(3), parent, description="seed 3 of tiny-a", data=data)
    for run_id in (parent, child):
        run = tracker.get_run(run_id)
        assert run.data.tags["mlflow.source.type"] == "LOCAL" and run.data.tags["mlflow.source.name"]
        assert "/" not in run.data.tags["mlflow.source.name"]  # the UI shows only what follows the last '/'
        inputs = run.inputs.dataset_inputs
        assert sorted(i.tags[0].value for i in inputs) == ["test", "train", "validation"]
        assert {(i.dataset.digest, i.dataset.source) for i in inputs} == {
            ("0123456789abcdef", '{"uri": "/data/cifar10.npz"}')
        }
    assert tracker.get_run(child).info.run_name == "seed 3 · tiny-a"
    assert tracker.get_run(child).data.tags["mlflow.note.content"] == "seed 3 of tiny-a"
    assert tracker.get_run(parent).data.params == {"architecture": "r004_step1"}
    experiment = tracker.client.get_experiment(tracker.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert "parent run" in experiment.tags["mlflow.note.content"]


def test_log_table_replaces_instead_of_appending(tracker, tmp_path):
    import json

    run_id = tracker.leaderboard_run("smoke")
    tracker.log_table(run_id, {"recipe": ["a", "b"], "mean_pct": [60.0, 55.0]}, "board.json")
    tracker.log_table(run_id, {"recipe": ["a", "b", "c"], "mean_pct": [61.0, 55.0, None]}, "board.json")
    table = json.loads(tracker.download_artifact(run_id, "board.json", tmp_path).read_text())
    assert table["columns"] == ["recipe", "mean_pct"] and [row[0] for row in table["data"]] == ["a", "b", "c"]
    logged = json.loads(tracker.get_run(run_id).data.tags["mlflow.loggedArtifacts"])
    assert logged == [{"path": "board.json", "type": "table"}]


def deleted_runs(tracker):
    from mlflow.entities import ViewType

    return tracker.client.search_runs([tracker.experiment_id], run_view_type=ViewType.DELETED_ONLY)


def test_claims_are_decided_by_the_store_not_by_clocks(tracker, monkeypatch):
    """Two machines, one store, the second machine's clock 5 s behind. A claims a seed and
    trains it; B claims the same seed later. Decided by start times, B's earlier-looking claim
    won too and both trained; decided by the store's order (tickets), B queues behind A."""
    import time

    parent = tracker.parent_run(identity(0), description="")
    first, _ = tracker.claim(identity(0), parent, owner="machine-a:101")
    assert first is not None
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() - 5.0)  # machine B's clock
    second, why = Tracker(tracker.tracking_uri).claim(identity(0), parent, owner="machine-b:202")
    assert second is None and why == "running in another sweep (machine-a:101)"
    [running] = tracker.search("attributes.status = 'RUNNING' and tags.`bench.kind` = 'child'")
    assert running.info.run_id == first


def barrier_before_creating(monkeypatch, kind: str, parties: int = 2):
    """Hold every creation of a ``kind`` run until ``parties`` threads are about to create one: the
    worst interleaving of two commands, made certain."""
    import threading

    barrier = threading.Barrier(parties, timeout=30)
    real_create = Tracker._create_run

    def create(self, run_name, tags, *args):
        if tags.get("bench.kind") == kind:
            barrier.wait()
        return real_create(self, run_name, tags, *args)

    monkeypatch.setattr(Tracker, "_create_run", create)


def in_threads(*calls):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(calls)) as pool:
        return [future.result(timeout=60) for future in [pool.submit(call) for call in calls]]


def test_two_commands_starting_a_group_at_once_make_one_parent(tracker, monkeypatch):
    """Both commands look, find no parent, and create one at the same moment: two parents for
    one group (their seeds split between them). Now they elect one; the other ends KILLED,
    deleted, with its reason."""
    barrier_before_creating(monkeypatch, "parent")
    other = Tracker(tracker.tracking_uri)
    made = in_threads(
        lambda: tracker.parent_run(identity(0), description="x", params={"architecture": "a"}),
        lambda: other.parent_run(identity(1), description="x", params={"architecture": "a"}),
    )
    assert made[0] == made[1]
    [parent] = tracker.search("tags.`bench.kind` = 'parent'")
    assert parent.info.run_id == made[0] and parent.data.params == {"architecture": "a"}
    [loser] = deleted_runs(tracker)
    assert loser.info.status == "KILLED" and "a second parent for its group" in loser.data.tags[TAG_ERROR]
    assert tracker.parent_runs("smoke") == {identity(0).group: made[0]}


def test_a_lost_claim_is_closed_with_its_reason(tracker, monkeypatch):
    """Two claimants of one seed at once: one wins; the loser's run was deleted while RUNNING
    (the deleted view showed it running for ever). Now it is KILLED first, with why; and runs an
    older release deleted while RUNNING are closed by the next command's repair."""
    import socket

    parent = tracker.parent_run(identity(0), description="")
    barrier_before_creating(monkeypatch, "child")
    other = Tracker(tracker.tracking_uri)
    results = in_threads(
        lambda: tracker.claim(identity(0), parent, owner="machine-a:1"),
        lambda: other.claim(identity(0), parent, owner="machine-b:2"),
    )
    assert sorted(run_id is None for run_id, _ in results) == [False, True]
    [loser] = deleted_runs(tracker)
    assert loser.info.status == "KILLED"
    assert loser.data.tags[TAG_ERROR].startswith("lost its claim: running in another sweep (machine-")

    monkeypatch.undo()
    legacy = tracker.child_run(identity(1), parent, owner=f"{socket.gethostname()}:999999999")
    tracker.client.delete_run(legacy)  # as a release before this one left a lost claim
    lines = tracker.repair()
    closed = tracker.client.get_run(legacy)
    assert closed.info.status == "KILLED" and closed.info.lifecycle_stage == "deleted"
    assert "deleted while RUNNING" in closed.data.tags[TAG_ERROR]
    assert any("closed deleted run seed 1" in line for line in lines)


def test_a_parent_candidate_left_by_a_dead_command_is_closed(tracker):
    """A command died while its parent candidate was being elected: the candidate is closed
    (KILLED, deleted, with why) by the next command, never finished as a second parent."""
    import socket

    from harness.store.schema import TAG_CHOOSING, TAG_CLAIM

    parent = tracker.parent_run(identity(0), description="")
    orphan = tracker.parent_run(identity(0, "other"), description="")  # another group's, to be left unelected
    tracker.client.set_tag(orphan, TAG_CHOOSING, "1")
    tracker.client.set_tag(orphan, TAG_CLAIM, f"{socket.gethostname()}:999999999")
    lines = tracker.repair()
    assert tracker.client.get_run(orphan).info.lifecycle_stage == "deleted"
    assert tracker.client.get_run(orphan).info.status == "KILLED"
    closed = tracker.client.get_run(parent)  # a parent left RUNNING, with no seed: closed, not shown as finished
    assert closed.info.status == "KILLED" and "no seed ran" in closed.data.tags[TAG_ERROR]
    assert any("closed parent candidate" in line for line in lines)


def test_a_claim_taken_over_never_finishes_beside_its_successor(tracker):
    """A claimant stopped (SIGSTOP) for longer than the claim timeout: another sweep takes its
    stale claim over and trains the seed. When the first resumed, both ended FINISHED. Now the
    first ends KILLED, superseded, and only the successor finishes."""
    import time

    parent = tracker.parent_run(identity(0), description="")
    stopped, _ = tracker.claim(identity(0), parent, owner="machine-a:1")
    tracker.set_tag(stopped, "bench.heartbeat", f"{time.time() - 1000:.0f}")  # silent for 1000 s
    successor, _ = Tracker(tracker.tracking_uri).claim(identity(0), parent, owner="machine-b:2")
    assert successor is not None
    assert tracker.finish(stopped) is False  # resumed, it trained to the end: too late
    assert tracker.finish(successor) is True
    children = {r.info.run_id: r for r in tracker.search("tags.`bench.kind` = 'child'")}
    assert children[successor].info.status == "FINISHED" and children[stopped].info.status == "KILLED"
    assert (
        children[stopped].data.tags[TAG_ERROR]
        == f"superseded by run {successor}, which took over its stale claim and is training it"
    )


SECRET_URI = "https://alice:s3cret@mlflow.example.com:5000/?token=t0ken&run=1"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (SECRET_URI, "https://***@mlflow.example.com:5000/?token=***&run=1"),
        ("postgresql://mlflow:pw@db:5432/mlflow?sslmode=require", "postgresql://***@db:5432/mlflow?sslmode=require"),
        (
            "s3://bucket/x?X-Amz-Signature=abc&X-Amz-Credential=def",
            "s3://bucket/x?X-Amz-Signature=***&X-Amz-Credential=***",
        ),
        ("https://h/p?api_key=k&password=p;key=q#top", "https://h/p?api_key=***&password=***;key=***#top"),
        ("sqlite:////tmp/store/mlflow.db", "sqlite:////tmp/store/mlflow.db"),
        ("mail me at alice@example.com", "mail me at alice@example.com"),
    ],
)
def test_credentials_in_uris_are_redacted(text, shown):
    from harness.store.connection import redacted

    assert redacted(text) == shown


def test_the_command_tag_and_the_run_failure_never_carry_credentials(tracker):
    """`bench --tracking-uri https://user:token@host …` is recorded as the run's command (the
    bench.command tag and MLflow's Source column): without the credentials."""
    from harness.store.schema import TAG_COMMAND, TAG_SOURCE_NAME

    tracker.command_line = ["bench", "--tracking-uri", SECRET_URI, "all", "--seeds", "3"]
    tracker.command = ["bench", f"--tracking-uri={SECRET_URI}", "all"]
    identity = RunIdentity("a", "smoke", 0, "h", "fp", "r.txt")
    child = tracker.child_run(identity, tracker.parent_run(identity, description="x"))
    tracker.fail(child, f"store at {SECRET_URI} refused the run")
    tags = tracker.client.get_run(child).data.tags
    for value in (tags[TAG_COMMAND], tags[TAG_SOURCE_NAME], tags[TAG_ERROR]):
        assert "s3cret" not in value and "t0ken" not in value and "alice" not in value, value
    assert "https://***@mlflow.example.com:5000/?token=***&run=1" in tags[TAG_COMMAND]


def test_printed_errors_never_carry_credentials():
    from click.testing import CliRunner

    from harness.cli import main

    unreachable = "https://bob:hunter2@127.0.0.1:9/?password=pw"
    result = CliRunner().invoke(main, ["--tracking-uri", unreachable, "leaderboard"])
    assert (
        result.exit_code == 1 and "cannot reach tracking server https://***@127.0.0.1:9/?password=***" in result.output
    )
    assert "hunter2" not in result.output and "bob" not in result.output and "=pw" not in result.output


def test_a_runs_failure_line_never_carries_credentials(test_config):
    import io

    from rich.console import Console

    from harness.cli.progress import RichProgress
    from harness.config import load_config
    from harness.sweep.executors import Outcome
    from harness.sweep.plan import plan

    config = load_config(test_config)
    [spec] = plan(config, [config.recipe("tiny-a")], profile="smoke", seeds=[0], data_fingerprint="fp")
    stream = io.StringIO()
    with RichProgress(Console(file=stream, width=300)) as progress:
        progress.sweep_planned(1, 1)
        progress.run_started(spec, 0, 1)
        progress.run_ended(
            Outcome(spec=spec, status="FAILED", reason=f"MlflowException: API request to {SECRET_URI} failed")
        )
    assert "s3cret" not in stream.getvalue() and "https://***@mlflow.example.com" in stream.getvalue()
