"""``bench doctor``: what this machine offers a sweep, checked in one command before a long run.

Each check is one line: what was looked at, what was found, and whether a sweep can rely on it
("ok"), will work around it ("note"), or will fail ("problem"). The GPU checks ask both the
driver (``nvidia-smi``) and the Keras backend, because a CUDA install that the backend cannot
use is the classic way to train on the CPU without noticing.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass


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
    """Compile and run a tiny function with XLA on the backend's default device."""
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            value = tf.function(lambda x: tf.reduce_sum(x * x), jit_compile=True)(tf.ones((4, 4)))
            return float(value) == 16.0, "tf.function(jit_compile=True) ran"
        if backend == "jax":
            import jax
            import jax.numpy as jnp

            return float(jax.jit(lambda x: (x * x).sum())(jnp.ones((4, 4)))) == 16.0, "jax.jit ran"
        return False, "the torch backend does not use XLA"
    except Exception as error:  # noqa: BLE001  any failure is the finding
        return False, f"{type(error).__name__}: {str(error).splitlines()[0][:120]}"


def run_checks(jobs: int | None = None, jobs_per_gpu: int | str = "auto") -> list[Check]:
    """Every check, in the order a person would read them."""
    import keras

    from harness.devices import (
        MEMORY_ENVIRONMENT,
        keras_backend,
        resolve_jit_compile,
        threads_per_worker,
        visible_gpus,
    )
    from harness.environment import accelerator_names, cpu_description, library_versions
    from harness.plan import SweepSettings, runs_per_gpu

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
                "will fail (check that the backend's CUDA build matches the driver)",
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
                checks.append(
                    Check(
                        f"precision on {device.name}",
                        "ok",
                        f"compute capability {capability[0]}.{capability[1]}: mixed_float16 {fp16}, mixed_bfloat16 {bf16}",
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
    data = os.environ.get("BENCH_DATA")
    if data:
        checks.append(Check("dataset", "ok" if os.path.exists(data) else "problem", f"BENCH_DATA={data}"))
    else:
        checks.append(Check("dataset", "note", "BENCH_DATA not set: pass --data PATH, or Keras downloads CIFAR-10"))
    return checks
