"""The sweep's closing note on its estimate: estimated ÷ measured seconds of every finished run."""

from __future__ import annotations

from harness.cli.progress import Eta


def test_the_closing_note_sets_each_finished_run_against_its_estimate():
    eta = Eta()
    assert eta.estimate_note() is None  # nothing estimated, nothing finished
    eta.estimates = {"a": 60.0, "b": 30.0, "c": 10.0, "d": 5.0}
    eta.finished = {"a": 40.0, "b": 60.0, "c": 10.0, "e": 7.0}  # d did not finish; e had no estimate
    note = eta.estimate_note()
    assert note.startswith("estimate ÷ measured: 0.50–1.50 over 3 finished run(s), median 1.00")
    assert "bench list --cost --calibrate" in note
