"""What a run ran on and from: hardware in words, library versions, the code's git commit, and
how much of the CPU other work took meanwhile (``OthersCpu``)."""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Callable
from pathlib import Path


def cpu_description() -> str:
    """e.g. 'Intel(R) Xeon(R) Platinum 8480+ ×2 cores'."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{model} ×{cores} cores"


def _proc_stat() -> str | None:
    try:
        return Path("/proc/stat").read_text()
    except OSError:
        return None


class OthersCpu:
    """The share of this process's CPUs that other work kept busy between ``restart`` (or
    creation) and ``share``: other processes, and on a virtual machine other guests (steal time).

    A timing is only as good as the machine was quiet: an epoch that took 83 s beside a test suite
    and 45 s alone differ by that share, not by the model. Read from /proc/stat's per-CPU lines
    (the CPUs this process may run on) less this process's own CPU time (every thread's,
    ``os.times``); 0 means the CPUs were this process's or idle, 0.5 on 2 cores that other work
    held about one. ``share`` is None where /proc/stat cannot be read (not Linux)."""

    def __init__(
        self,
        read: Callable[[], str | None] = _proc_stat,
        times: Callable[[], os.times_result] = os.times,
        cpus: set[int] | None = None,
    ) -> None:
        self._read, self._times = read, times
        if cpus is None and hasattr(os, "sched_getaffinity"):
            cpus = os.sched_getaffinity(0)
        self._cpus = cpus
        self._tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.restart()

    def _sample(self) -> tuple[float, float, float] | None:
        """(busy, busy + idle) seconds of this process's CPUs since boot, and this process's CPU seconds."""
        text = self._read()
        if not text:
            return None
        busy = total = 0.0
        for line in text.splitlines():
            name, *fields = line.split()
            if not name.startswith("cpu") or name == "cpu" or len(fields) < 8:
                continue
            if self._cpus is not None and int(name[3:]) not in self._cpus:
                continue
            user, nice, system, idle, iowait, irq, softirq, steal = (int(f) for f in fields[:8])
            working = user + nice + system + irq + softirq + steal  # guest time is inside user
            busy += working
            total += working + idle + iowait
        if not total:
            return None
        own = self._times()
        return busy / self._tick, total / self._tick, own.user + own.system

    def restart(self) -> None:
        self._mark = self._sample()

    def share(self) -> float | None:
        """Other work's share of these CPUs since the mark, 0–1 (None: unknown, or no tick passed)."""
        now, mark = self._sample(), self._mark
        if now is None or mark is None or now[1] <= mark[1]:
            return None
        others = (now[0] - mark[0]) - (now[2] - mark[2])
        return min(max(others / (now[1] - mark[1]), 0.0), 1.0)


def machine_load() -> float | None:
    """The 1-minute load average per CPU of this machine (no waiting: the kernel keeps it);
    None where it cannot be read. Over about 1: processes wait for a CPU."""
    try:
        return os.getloadavg()[0] / (os.cpu_count() or 1)
    except (OSError, AttributeError):
        return None


def accelerator_names(backend: str) -> list[str]:
    """Names of the GPUs the active Keras backend sees (empty on a CPU-only machine)."""
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            return [
                tf.config.experimental.get_device_details(d).get("device_name", d.name)
                for d in tf.config.list_physical_devices("GPU")
            ]
        if backend == "torch":
            import torch

            return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if backend == "jax":
            import jax

            return [d.device_kind for d in jax.devices() if d.platform != "cpu"]
    except Exception:  # noqa: BLE001  a description must never fail a run
        return []
    return []


def hardware_description(backend: str) -> str:
    gpus = accelerator_names(backend)
    return f"{', '.join(gpus)} + {cpu_description()}" if gpus else f"CPU only: {cpu_description()}"


def library_versions() -> dict[str, str]:
    import keras
    import mlflow
    import numpy

    backend = keras.backend.backend()
    versions = {
        "keras_backend": backend,
        "version.keras": keras.__version__,
        "version.mlflow": mlflow.__version__,
        "version.numpy": numpy.__version__,
        "version.python": platform.python_version(),
        "hostname": platform.node(),
        "hardware": hardware_description(backend),
    }
    backend_module = {"tensorflow": "tensorflow", "torch": "torch", "jax": "jax"}.get(backend)
    if backend_module:
        module = __import__(backend_module)
        versions[f"version.{backend_module}"] = module.__version__
    return versions


def git_commit(directory: Path) -> str:
    """Short commit of the repository holding ``directory``, '+dirty' if it has changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=directory, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=directory, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def import_keras_quietly() -> None:
    """Import Keras with the backend's native start-up log lines (CUDA probes, oneDNN notes)
    kept off the terminal; Python errors still surface once stderr is restored."""
    import sys

    if "keras" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # 3: also the cuInit error a GPU-less machine logs on first use
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import keras  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
