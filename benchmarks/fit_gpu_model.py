"""The reference GPU's step model, fitted to what benchmarks/gpu_check.py measured. Not a test.

    python benchmarks/fit_gpu_model.py results/gpu/h200-2026-12-04-a.json results/gpu/h200-2026-12-04-b.json \
        [--out results/gpu/h200-step-model.json]

Reads gpu_check.py's files in the order they were made (a section found ``ok`` in a later file
wins), counts the FLOPs and activation elements of every measured recipe's model as a run builds
it (``harness.cost.probe.measure``, untimed; any Keras backend), and writes what ``harness.cost.gpu_model``
reads: each measured recipe's training step, compile seconds, prediction rate and peak memory,
and the fit ``seconds per step = floor + FLOPs / rate + activation bytes / bandwidth`` over all of
them, with each recipe's fitted ÷ measured step and a check against the steady epochs measured
through the harness. It prints the fit and those ratios.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path, help="gpu_check.py JSON files, oldest first")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "gpu" / "h200-step-model.json")
    parser.add_argument("--config", type=Path, default=REPO / "benchmarks.toml")
    arguments = parser.parse_args(argv)

    from harness.config import load_config
    from harness.cost.gpu_model import build_reference
    from harness.cost.probe import measure
    from harness.environment import import_keras_quietly

    files = [json.loads(path.read_text()) for path in arguments.files]
    measured = set()
    for data in files:
        for name in ("throughput_all", "backbones_224"):
            result = data.get("sections", {}).get(name, {}).get("result") or {}
            measured |= {run["recipe"] for run in result.get("runs", []) if "step_seconds" in run}
    import_keras_quietly()
    import keras

    config = load_config(arguments.config)
    counted = {}
    for name in sorted(measured):
        _, flops, _ = measure(config, config.recipe(name), timed=False)
        counted[name] = flops
        keras.backend.clear_session()
    sources = [
        str(path.resolve().relative_to(REPO)) if path.resolve().is_relative_to(REPO) else str(path)
        for path in arguments.files
    ]
    reference = build_reference(files, counted, sources=sources)
    arguments.out.write_text(json.dumps(reference, indent=1, sort_keys=False) + "\n")
    fit = reference["fit"]
    parameters = fit["parameters"]
    print(
        f"{reference['name']}: {fit['points']} recipes; step = {parameters['floor_seconds'] * 1e3:.2f} ms + FLOPs / "
        f"{parameters['flops_per_second'] / 1e12:.0f} TFLOP/s + activation bytes / {parameters['bytes_per_second'] / 1e9:,.0f} GB/s; "
        f"fitted / measured {fit['fitted_over_measured']['min']:.2f}–{fit['fitted_over_measured']['max']:.2f}"
    )
    for check in reference["steady_epochs_check"]:
        print(
            f"  {check['recipe']}: modelled epoch {check['modelled_epoch_seconds']:.3f} s, measured through the harness "
            f"{check['measured_epoch_seconds']:.3f} s ({check['modelled_over_measured']:.2f}×)"
        )
    print(f"wrote {arguments.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
