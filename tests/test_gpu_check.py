"""benchmarks/gpu_check.py, the prepared check for a lent GPU, run here on the CPU: its record
survives failures, skips and a kill, and (slow) the whole script runs at tiny sizes under JAX."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO
from tests.test_gpu_proxies import CNN_REPRESENTATIVES

SCRIPT = REPO / "benchmarks" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules["gpu_check"]


def run_with(gpu_check, monkeypatch, tmp_path, sections: dict, *options: str) -> dict:
    monkeypatch.setattr(gpu_check, "SECTIONS", sections)
    out = tmp_path / "check.json"
    args = gpu_check.parse_arguments(["--out", str(out), "--sections", ",".join(sections), *options])
    returned = gpu_check.run(args)
    on_disk = json.loads(out.read_text())
    assert on_disk == json.loads(json.dumps(returned, default=gpu_check._json_default))
    return on_disk


def test_representatives_are_the_gpu_proxies_ones(gpu_check):
    assert sorted(gpu_check.CNN_REPRESENTATIVES) == sorted(CNN_REPRESENTATIVES)


def test_a_failing_section_is_recorded_and_the_next_runs(gpu_check, monkeypatch, tmp_path):
    def measures(ctx, out):
        out["value"] = 1.5

    def fails(ctx, out):
        out["before"] = "kept"
        raise ValueError("no kernel for this op")

    def skips(ctx, out):
        raise gpu_check.Skip("torch is not installed")

    sections = {"first": (measures, 0.0), "broken": (fails, 0.0), "absent": (skips, 0.0), "last": (measures, 0.0)}
    data = run_with(gpu_check, monkeypatch, tmp_path, sections)
    statuses = {name: entry["status"] for name, entry in data["sections"].items()}
    assert statuses == {"first": "ok", "broken": "error", "absent": "skipped", "last": "ok"}
    broken = data["sections"]["broken"]
    assert broken["error"]["type"] == "ValueError" and broken["error"]["message"] == "no kernel for this op"
    assert "raise ValueError" in broken["error"]["traceback"] and broken["result"] == {"before": "kept"}
    assert data["sections"]["absent"]["reason"] == "torch is not installed"
    assert data["sections"]["last"]["result"] == {"value": 1.5} and "finished" in data


def test_what_cannot_fit_the_budget_is_skipped_with_the_reason(gpu_check, monkeypatch, tmp_path):
    ran = []

    def loop(ctx, out):
        for item in ("small", "large"):
            if ctx.fits(5.0 if item == "small" else 500.0, item, out):
                ran.append(item)

    sections = {"cheap": (loop, 1.0), "costly": (loop, 300.0)}
    data = run_with(gpu_check, monkeypatch, tmp_path, sections, "--budget-seconds", "60", "--reserve-seconds", "10")
    assert ran == ["small"]
    cheap, costly = data["sections"]["cheap"], data["sections"]["costly"]
    assert cheap["status"] == "partial" and cheap["result"]["left_out"][0].startswith("large: ")
    assert costly["status"] == "skipped" and "needs at least 300 s" in costly["reason"]


def test_no_gpu_stops_the_check_after_versions(gpu_check, monkeypatch, tmp_path):
    """A backend that sees no GPU (a broken CUDA install) would time the CPU for minutes of GPU
    time: every later section is skipped, saying why."""

    def versions(ctx, out):
        ctx.stop_reason = "jax sees no GPU (see versions)"

    def never(ctx, out):
        raise AssertionError("measured without a GPU")

    data = run_with(gpu_check, monkeypatch, tmp_path, {"versions": (versions, 0.0), "tf32": (never, 0.0)})
    assert data["sections"]["tf32"] == {
        "status": "skipped",
        "started_at_seconds": data["sections"]["tf32"]["started_at_seconds"],
        "reason": "jax sees no GPU (see versions)",
    }


def test_every_measurement_is_on_disk_before_a_kill(gpu_check, monkeypatch, tmp_path):
    """SIGTERM (a time limit) mid-section: the file holds what was measured and says where it stopped."""

    def killed(ctx, out):
        out["measured"] = [1, 2]
        ctx.save()
        assert json.loads(ctx.report.path.read_text())["sections"]["slow"]["result"]["measured"] == [1, 2]
        os.kill(os.getpid(), signal.SIGTERM)

    def never(ctx, out):
        raise AssertionError("ran after the kill")

    data = run_with(gpu_check, monkeypatch, tmp_path, {"slow": (killed, 0.0), "after": (never, 0.0)})
    assert data["sections"]["slow"]["status"] == "killed" and data["sections"]["slow"]["result"]["measured"] == [1, 2]
    assert "after" not in data["sections"] and data["stopped"].startswith("Terminated")


def test_nvidia_smi_falls_back_to_the_fields_an_older_driver_knows(gpu_check, monkeypatch, tmp_path):
    fake = tmp_path / "nvidia-smi"
    fake.write_text(
        "#!/bin/sh\n"
        'case "$1" in\n'
        "  --query-gpu=*compute_cap*) echo 'Field \"compute_cap\" is not a valid field' >&2; exit 2;;\n"
        "  --query-gpu=*) echo 'NVIDIA H200, 580.65.06, 143771 MiB';;\n"
        "  *) echo '| NVIDIA-SMI 580.65.06   Driver Version: 580.65.06   CUDA Version: 13.0 |';;\n"
        "esac\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert gpu_check.nvidia_smi() == {
        "available": True,
        "gpus": [{"name": "NVIDIA H200", "driver_version": "580.65.06", "memory.total": "143771 MiB"}],
        "driver_cuda_version": "13.0",
    }
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    assert gpu_check.nvidia_smi()["available"] is False


def test_unknown_sections_are_refused(gpu_check, capsys):
    with pytest.raises(SystemExit):
        gpu_check.parse_arguments(["--sections", "versions,tf23"])
    assert "unknown section(s) tf23" in capsys.readouterr().err


def test_feature_errors_separate_the_image_signal_from_the_offset(gpu_check):
    """A constant shift of every feature leaves the image-dependent part exact; noise of the
    size of that part is a 100 % signal error however large the shared offset is."""
    rng = np.random.default_rng(0)
    signal_part = rng.standard_normal((4, 50)) * 1e-3
    reference = 100.0 + signal_part
    shifted = gpu_check._errors(reference + 0.5, reference)
    assert shifted["signal_relative_error"] < 1e-9 and shifted["relative_error"] == pytest.approx(0.005, rel=1e-3)
    noisy = reference + rng.standard_normal((4, 50)) * 1e-3
    errors = gpu_check._errors(noisy, reference)
    assert errors["relative_error"] < 2e-5 and 0.5 < errors["signal_relative_error"] < 2.0
    features = {"highest": reference, "tensorfloat32": reference + 1e-4, "default": reference + 1e-4}
    assert gpu_check._default_equals(features) == {
        "default_equals": "tensorfloat32",
        "default_closest": "tensorfloat32",
    }


@pytest.mark.slow
def test_the_whole_check_runs_at_tiny_sizes_under_jax(tmp_path):
    """Every section at --tiny sizes (the first recipe of each list), the way the GPU machine runs
    it (a fresh process under JAX): nothing fails, and the numbers each section promises are there."""
    pytest.importorskip("jax")
    out = tmp_path / "tiny.json"
    environment = {**os.environ, "KERAS_BACKEND": "jax"}
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--tiny", "--budget-seconds", "1500", "--out", str(out)],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        timeout=1800,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    data = json.loads(out.read_text())
    sections = data["sections"]
    statuses = {name: entry["status"] for name, entry in sections.items()}
    expected_torch = "ok" if importlib.util.find_spec("torch") else "skipped"
    assert statuses == {**{name: "ok" for name in statuses}, "torch_tf32": expected_torch}, statuses
    assert sections["versions"]["result"]["keras_backend"] == "jax"
    xla = sections["xla_auto"]["result"]
    assert xla["harness_rule"] is True and xla["keras_agrees_with_harness"] is True
    assert xla["keras_auto[r004-step10, augmentation built for xla=False]"] is False
    assert all(run["exit_code"] == 0 and run["step_seconds"] > 0 for run in sections["backbones_224"]["result"]["runs"])
    assert all(run["exit_code"] == 0 for run in sections["backbones_224_bf16"]["result"]["runs"])
    steady = sections["steady_epochs"]["result"]["runs"] + sections["steady_epochs_bf16"]["result"]["runs"]
    assert {(r["recipe"], r["kind"], r["precision"]) for r in steady} == {
        ("r004-step1", "harness", "float32"),
        ("r004-step1", "bare", "float32"),
        ("r004-step1", "harness", "mixed_bfloat16"),
    }
    compiled = sections["compiled_steps"]["result"]
    assert [(r["recipe"], r["precision"]) for r in compiled["runs"]] == [
        ("r004-step10", "float32"),
        ("r004-step10", "mixed_bfloat16"),
    ]
    assert compiled["failed"] == []
    assert all(r["harness_over_bare"] > 0 for r in steady if r["kind"] == "harness" and r["precision"] == "float32")
    tf32 = sections["tf32"]["result"]
    # the precision reaches the compiled convolutions (on a CPU it changes no number)
    assert tf32["hlo_precision"] == {"highest": ["HIGHEST"], "default": ["DEFAULT"], "tensorfloat32": ["HIGH"]}
    bf16 = [r for r in tf32["runs"] if r["precision"] == "mixed_bfloat16" and r["biases"] == "calibrated"]
    assert bf16[1]["signal_relative_error"] > 10 * bf16[0]["signal_relative_error"]  # [0, 1/255] vs [0, 1]
    packed = sections["packing"]["result"]
    assert len(packed["2_at_once"]["workers"]) == 2 and packed["2_at_once"]["overlap_seconds"] > 0
    assert packed["total_over_alone"] > 0
    assert all(r["tflops"] > 0 for r in sections["throughput_all"]["result"]["runs"])


def test_a_backend_without_a_gpu_is_named_and_nothing_more_is_timed(tmp_path):
    """The real versions section on this CPU (no --tiny): it records the machine, then the check
    stops instead of timing the CPU at GPU sizes."""
    pytest.importorskip("jax")
    out = tmp_path / "check.json"
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--sections", "versions,tf32", "--out", str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, "KERAS_BACKEND": "jax"},
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    sections = json.loads(out.read_text())["sections"]
    versions = sections["versions"]["result"]
    assert sections["versions"]["status"] == "ok" and versions["accelerators"] == []
    assert versions["keras_backend"] == "jax" and versions["packages"]["keras"] and versions["devices"]
    assert sections["tf32"]["status"] == "skipped" and sections["tf32"]["reason"].startswith("jax sees no GPU")
    assert "tf32: skipped (jax sees no GPU" in completed.stdout
