"""What a run ran on and from: hardware in words, library versions, the code's git commit."""

from __future__ import annotations

import os
import platform
import subprocess
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
