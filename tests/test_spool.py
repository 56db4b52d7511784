"""The spool: a worker's writes kept on disk when the store refuses them, replayed by the next
command; what it keeps (data only), and what one bad entry can and cannot do."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from harness.identity import RunIdentity
from harness.store.schema import TAG_ERROR
from harness.store.spool import SpoolError, SpoolingTracker, pending, replay, spool_root
from harness.store.tracking import Tracker


class FailingStore:
    """A Tracker whose writes fail once ``writes`` of them went through (a server that died);
    with ``landed``, each failing write reaches the store before it fails (its answer was lost)."""

    def __init__(self, real, *, writes: int, landed: bool = False):
        self.real, self.allowed, self.landed = real, writes, landed

    def __getattr__(self, name):
        attribute = getattr(self.real, name)
        if not callable(attribute) or name == "get_run":
            return attribute

        def call(*args, **kwargs):
            self.allowed -= 1
            if self.allowed >= 0:
                return attribute(*args, **kwargs)
            if self.landed:
                attribute(*args, **kwargs)
            raise ConnectionError("server gone (injected)")

        return call


@pytest.fixture
def tracker(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    return Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")


def seed(number: int) -> RunIdentity:
    return RunIdentity("tiny-a", "smoke", number, "hash", "fp", "r.txt")


def new_run(tracker, number: int = 0) -> str:
    return tracker.child_run(seed(number), tracker.parent_run(seed(number), description="x"))


def spool_a_run(tracker, run_id: str, **failing) -> SpoolingTracker:
    """The store fails after the first epoch's write: the rest of the run goes to the spool."""
    spooling = SpoolingTracker(FailingStore(tracker, writes=1, **failing), run_id)
    spooling.log_metrics(run_id, {"accuracy/validation": 0.1}, step=1)
    spooling.log_metrics(run_id, {"accuracy/validation": 0.2}, step=2)
    spooling.log_metrics(run_id, {"accuracy/test": 0.3})
    spooling.finish(run_id)
    return spooling


def test_the_spool_holds_data_only(tracker):
    """The spool was a pickle: loading one written by someone else runs their code. It is JSON."""
    run_id = new_run(tracker)
    spool_a_run(tracker, run_id)
    [folder] = pending()
    assert sorted(p.name for p in folder.iterdir()) == ["calls.json"]
    record = json.loads((folder / "calls.json").read_text())
    assert record["run_id"] == run_id and record["tracking_uri"] == tracker.tracking_uri
    assert [call["call"] for call in record["calls"]] == ["log_metrics", "log_metrics", "finish"]


class Planted:
    """What a hostile pickle does when loaded: here, only touch a file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (self.marker,)


def test_an_old_pickled_spool_is_read_as_data_or_kept_aside_unrun(tracker, tmp_path):
    """Spools written before the JSON format are read with nothing but data and paths allowed:
    a plain one is uploaded; one that would run code when loaded is kept aside, never run."""
    plain, planted = new_run(tracker, 0), new_run(tracker, 1)
    marker = tmp_path / "the pickle ran code"
    calls = {
        plain: [("log_metrics", (plain, {"accuracy/test": 0.4}), {}), ("finish", (plain,), {})],
        planted: [("set_tag", (planted, "note", Planted(marker)), {}), ("finish", (planted,), {})],
    }
    for run_id, made in calls.items():
        folder = spool_root() / run_id
        folder.mkdir(parents=True)
        (folder / "calls.pickle").write_bytes(pickle.dumps({"run_id": run_id, "calls": made, "why": "x"}))
    notes = []
    assert replay(tracker, notes.append) == 1
    assert not marker.exists()
    assert tracker.get_run(plain).info.status == "FINISHED"
    assert tracker.get_run(planted).info.status == "RUNNING"
    [aside] = [n for n in notes if n.startswith("kept aside")]
    assert planted in aside and "pathlib.Path.touch" in aside and (spool_root() / "kept-aside" / planted).is_dir()


def test_one_bad_spool_entry_never_blocks_the_others(tracker):
    """A spooled run whose run was deleted, and one whose file is corrupt: every later command on
    that store failed at replay. Each is kept aside with one line; the good one is uploaded."""
    good, deleted, corrupt = new_run(tracker, 0), new_run(tracker, 1), new_run(tracker, 2)
    for run_id in (good, deleted, corrupt):
        spool_a_run(tracker, run_id)
    tracker.client.delete_run(deleted)
    for path in (spool_root() / corrupt).glob("calls.*"):
        path.write_bytes(b"\x80\x04 not what was written")
    notes = []
    assert replay(tracker, notes.append) == 1
    assert tracker.get_run(good).info.status == "FINISHED"
    aside = sorted(n for n in notes if n.startswith("kept aside"))
    assert len(aside) == 2 and any(f"run {deleted} was deleted" in n for n in aside)
    assert any(corrupt in n and "cannot be read" in n for n in aside)
    assert pending() == [] and replay(tracker, notes.append) == 0  # the next command is not blocked


def test_a_write_whose_answer_was_lost_is_not_logged_twice(tracker):
    """The store took a write but the worker never heard (the server died answering): the write
    was spooled too, and replay logged that metric point a second time."""
    run_id = new_run(tracker)
    spool_a_run(tracker, run_id, landed=True)
    replay(tracker, lambda line: None)
    assert tracker.metric_history(run_id, "accuracy/validation") == [0.1, 0.2]
    assert len(tracker.client.get_metric_history(run_id, "accuracy/test")) == 1


def test_a_spool_uploaded_after_its_seed_was_retrained_does_not_finish_it_twice(tracker):
    """The store was down; the seed was trained again elsewhere and FINISHED. The spool, uploaded
    later, finished its run too: two FINISHED runs for one identity. Now it ends KILLED."""
    first = new_run(tracker)
    spool_a_run(tracker, first)
    tracker.fail(first, "its claim went stale", status="KILLED")  # what the retraining sweep did
    again = new_run(tracker)
    tracker.finish(again)
    notes = []
    replay(tracker, notes.append)
    assert notes[0].endswith(f"it ended KILLED: superseded by run {again}, which finished it")
    statuses = {r.info.run_id: r for r in tracker.search("tags.`bench.kind` = 'child'")}
    assert statuses[again].info.status == "FINISHED" and statuses[first].info.status == "KILLED"
    assert statuses[first].data.tags[TAG_ERROR] == f"superseded by run {again}, which finished it"


def test_an_unwritable_spool_says_the_results_are_not_kept(tracker, tmp_path, monkeypatch):
    """The store refuses a write and the spool folder cannot be written (here its parent is a
    file; a read-only or full disk is the same): the run must not say its results were kept."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("BENCH_CACHE", str(blocker / "cache"))
    run_id = new_run(tracker)
    spooling = SpoolingTracker(FailingStore(tracker, writes=0), run_id)
    with pytest.raises(SpoolError, match="results are not kept") as raised:
        spooling.log_metrics(run_id, {"accuracy/validation": 0.1}, step=1)
    assert "server gone (injected)" in str(raised.value) and pending() == []
