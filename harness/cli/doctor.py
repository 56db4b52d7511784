"""``bench doctor``: what this machine offers a sweep, checked in one command before a long run.

Each check is one line: what was looked at, what was found, and whether a sweep can rely on it
("ok"), will work around it ("note"), or will fail ("problem"). The GPU checks ask both the
driver (``nvidia-smi``) and the Keras backend, because a CUDA install that the backend cannot
use is the classic way to train on the CPU without noticing.
"""

from __future__ import annotations

import math
import os
import platform
import sys
from dataclasses import dataclass

import click

from harness.cli.options import Context, RunsPerGpu, pass_context, rich_console


@dataclass(frozen=True)
class Check:
    topic: str
    status: str  # ok | note | problem
    detail: str


def _cpu_flags() -> set[str]:
    try:
        for line in open("/proc/cpuinfo"):  # noqa: SIM115  read once
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _xla_compiles(backend: str) -> tuple[bool, str]:
    """One train step of a tiny real model compiled with XLA on the backend's default device: a
    Dense layer, softmax and cross-entropy, whose exp and log need CUDA's libdevice on a GPU (a
    bare reduction compiles without it, and would pass where every real model fails)."""
    if backend == "torch":
        return False, "the torch backend does not use XLA"
    try:
        import keras
        import numpy as np

        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", jit_compile=True)
        if not model.jit_compile:
            return False, "Keras would not compile the model with XLA"
        x, y = np.linspace(0.0, 1.0, 32, dtype="float32").reshape(8, 4), np.arange(8) % 3
        loss = float(np.asarray(model.train_on_batch(x, y)).reshape(-1)[0])
        if not math.isfinite(loss):
            return False, f"a Dense + softmax + cross-entropy train step compiled with XLA gave loss {loss}"
        return True, "a Dense + softmax + cross-entropy train step (exp, log) compiled with XLA and ran"
    except Exception as error:  # noqa: BLE001  any failure is the finding
        return False, f"{type(error).__name__}: {_first_line(error)[:160]}"


def _first_line(error: Exception) -> str:
    """The line of an error that says what went wrong (Keras wraps a layer's error in
    'Exception encountered when calling …' and terminal colour codes)."""
    import re

    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in str(error).splitlines()]
    said = [line for line in lines if line and not line.startswith("Exception encountered when calling")]
    return (said or [""])[0]


def dataset_check(path: str | None, why: str) -> Check:
    """The dataset a sweep would read (``path``, None for Keras' download) and ``why`` that one."""
    if path is None:
        return Check("dataset", "note", why)
    return Check("dataset", "ok" if os.path.exists(path) else "problem", f"{path}: {why}")


def run_checks(
    jobs: int | None = None, jobs_per_gpu: int | str = "auto", dataset: tuple[str | None, str] | None = None
) -> list[Check]:
    """Every check, in the order a person would read them. ``dataset``: the path a command would
    read and why (``Context.dataset_choice`` in the CLI); by default $BENCH_DATA or Keras."""
    import keras

    from harness.environment import accelerator_names, cpu_description, library_versions
    from harness.run.devices import (
        GPU_INSTALL,
        MEMORY_ENVIRONMENT,
        keras_backend,
        resolve_jit_compile,
        threads_per_worker,
        visible_gpus,
    )
    from harness.sweep.plan import SweepSettings, runs_per_gpu

    checks: list[Check] = []
    backend = keras.backend.backend()
    versions = library_versions()
    version_text = ", ".join(
        f"{k.removeprefix('version.')} {v}" for k, v in versions.items() if k.startswith("version.")
    )
    checks.append(Check("software", "ok", f"Python {platform.python_version()}; {version_text}"))
    planned = keras_backend()
    status = "ok" if planned == backend else "problem"
    checks.append(Check("Keras backend", status, f"{backend} (workers will start with {planned})"))
    if backend == "tensorflow":
        import tensorflow as tf

        build = tf.sysconfig.get_build_info()
        cuda = build.get("cuda_version") or "none (a CPU-only build)"
        checks.append(Check("TensorFlow build", "ok", f"CUDA {cuda}, cuDNN {build.get('cudnn_version') or 'none'}"))

    driver = visible_gpus()
    seen = accelerator_names(backend)
    if not driver and not seen:
        checks.append(Check("GPUs", "note", "none: every run trains on the CPU (identity: device cpu)"))
    elif driver and len(seen) >= len(driver):
        names = "; ".join(f"{g.id}: {g.name} ({g.memory_mib or '?'} MiB)" for g in driver)
        checks.append(Check("GPUs", "ok", f"driver lists {names}; {backend} sees {len(seen)}"))
    elif driver:
        checks.append(
            Check(
                "GPUs",
                "problem",
                f"the driver lists {len(driver)} GPU(s) but {backend} sees {len(seen)}: runs planned for a GPU "
                f"will fail: {GPU_INSTALL.get(backend, 'install its CUDA build')}",
            )
        )
    else:
        checks.append(
            Check("GPUs", "problem", f"{backend} sees {', '.join(seen)} but nvidia-smi lists none: put it on PATH")
        )
    if driver and backend == "tensorflow":
        import tensorflow as tf

        for device in tf.config.list_physical_devices("GPU"):
            details = tf.config.experimental.get_device_details(device)
            capability = details.get("compute_capability")
            if capability:
                fp16 = "yes" if capability >= (7, 0) else "no (needs 7.0)"
                bf16 = "yes" if capability >= (8, 0) else "no (needs 8.0)"
                tf32 = "off unless --precision tf32" if capability >= (8, 0) else "not on this GPU"
                checks.append(
                    Check(
                        f"precision on {device.name}",
                        "ok",
                        f"compute capability {capability[0]}.{capability[1]}: mixed_float16 {fp16}, mixed_bfloat16 {bf16}; "
                        f"TF32 {tf32}",
                    )
                )
    elif not driver:
        flags = _cpu_flags()
        bf16 = "native (avx512_bf16/amx)" if flags & {"avx512_bf16", "amx_bf16"} else "emulated: slower than float32"
        checks.append(Check("precision on the CPU", "note", f"mixed_float16 emulated; mixed_bfloat16 {bf16}"))

    compiles, how = _xla_compiles(backend)
    auto = resolve_jit_compile("auto", backend=backend, accelerator=bool(seen))
    checks.append(
        Check(
            "XLA",
            "ok" if compiles or backend == "torch" else "problem",
            f"{how}; --jit-compile auto resolves to {'on' if auto else 'off'} here",
        )
    )
    memory = ", ".join(f"{k}={v}" for k, v in MEMORY_ENVIRONMENT.items())
    checks.append(
        Check("GPU memory", "ok", f"each worker starts with {memory}: runs sharing a GPU take memory as needed")
    )
    per_gpu = runs_per_gpu(SweepSettings(jobs_per_gpu=jobs_per_gpu))
    slots = len(driver) * per_gpu
    concurrent = jobs or (slots or 1)
    threads = None if driver else threads_per_worker(concurrent)
    packing = f"at most {per_gpu} per GPU" + (", by each run's share of it" if jobs_per_gpu == "auto" else "")
    placement = (
        f"{concurrent} run(s) at once, each pinned to one of {len(driver)} GPU(s), {packing}"
        if driver
        else f"{concurrent} run(s) at once on {cpu_description()}"
        + (f", {threads} thread(s) each" if threads else ", all cores")
    )
    checks.append(Check("placement", "ok", placement))
    if dataset is None:
        data = os.environ.get("BENCH_DATA")
        dataset = (data, "from BENCH_DATA") if data else (None, "no BENCH_DATA: Keras downloads CIFAR-10")
    checks.append(dataset_check(*dataset))
    return checks


@click.command("doctor")
@click.option("--jobs", type=click.IntRange(1, 64), default=None, help="Check placement for this many runs at once.")
@click.option(
    "--jobs-per-gpu",
    type=RunsPerGpu(),
    default="auto",
    show_default=True,
    help="Runs sharing one GPU at once, or 'auto' (by each run's share of a GPU, at most 4), as a sweep takes it.",
)
@pass_context
def doctor_command(context: Context, jobs: int | None, jobs_per_gpu: int | str) -> None:
    """Check this machine before a long sweep: backend, GPUs (driver and backend), precision, XLA,
    GPU memory policy, run placement, and which dataset a sweep would read. Exits 1 if a check
    finds a problem."""
    from rich.table import Table

    from harness.environment import import_keras_quietly

    import_keras_quietly()
    checks = run_checks(jobs=jobs, jobs_per_gpu=jobs_per_gpu, dataset=context.dataset_choice())
    table = Table(title="bench doctor")
    for column in ("check", "status", "found"):
        table.add_column(column, overflow="fold")
    colour = {"ok": "green", "note": "yellow", "problem": "red"}
    for check in checks:
        table.add_row(check.topic, f"[{colour[check.status]}]{check.status}[/]", check.detail)
    rich_console().print(table)
    if any(check.status == "problem" for check in checks):
        sys.exit(1)
