"""The names of what the harness logs to MLflow: tags, params and metrics.

Written by the worker and the tracker, read back by the leaderboard and the plots: both sides
use these constants, so renaming one is a change in one place. A name here is part of every
existing store's layout; change it only with a way to read the old one.
"""

from __future__ import annotations

# Tags: which run is which. Filter on them in the MLflow UI, e.g. tags."bench.recipe" = "r004-step7".
TAG_KIND = "bench.kind"  # parent | child | leaderboard
TAG_RECIPE = "bench.recipe"
TAG_PROFILE = "bench.profile"
TAG_SEED = "bench.seed"
TAG_CONFIG_HASH = "bench.config_hash"
TAG_DATA = "bench.data_fingerprint"
TAG_REPORT = "bench.report"
TAG_IDENTITY = "bench.identity"
TAG_GROUP = "bench.group"
TAG_DEVICE = "bench.device"  # cpu | gpu: the hardware class a run trained on
TAG_ERROR = "bench.error"  # why a run FAILED or was KILLED
TAG_CLAIM = "bench.claim"  # host:pid of the bench process supervising a RUNNING child run
TAG_HEARTBEAT = "bench.heartbeat"  # unix seconds, refreshed while that process lives
TAG_TICKET = "bench.claim.ticket"  # a claim's place in its identity's queue (Lamport's bakery)
TAG_CHOOSING = "bench.claim.choosing"  # "1" while a claim is still taking its ticket
TAG_WEIGHTS = "bench.weights"  # imagenet | random, on transfer runs
TAG_PLOT_ERROR = "bench.plot_error"  # a parent whose seed-band plots could not be drawn
TAG_BOARD_ERROR = "bench.board_error"  # a parent whose board/* metrics could not be updated
TAG_COMMAND = "bench.command"  # the whole command line that created the run
TAG_IMPORTED = "bench.imported"  # on a run `bench import` made from a results/ record: the record's path
TAG_RECONSTRUCTED = "bench.reconstructed"  # "true" where that record was rebuilt from an older results file
# On a child that continued a stopped run from its checkpoint: the epochs the checkpoint held (the
# last epoch done before the stop), and the run id of the stopped child it continued.
TAG_RESUMED_FROM_EPOCH = "bench.resumed_from_epoch"
TAG_RESUMED_FROM_RUN = "bench.resumed_from_run"
TAG_PARENT = "mlflow.parentRunId"  # MLflow's own: nests a child under its parent
TAG_NOTE = "mlflow.note.content"  # MLflow's own: the run's description

KIND_PARENT, KIND_CHILD, KIND_LEADERBOARD = "parent", "child", "leaderboard"

# Params of a child run that the leaderboard reads back.
PARAM_REPORTED_ACCURACY = "reported.test_accuracy"  # the report's claim, "None" where it makes none
PARAM_REPORTED_PARAMS = "reported.params"
# A recipe's summary and the trained settings that differ from the step it was built from: what a
# step changed, in the compare view of two parents (harness.store.recipe_params.what_changed).
PARAM_WHAT_CHANGED = "what_changed"
PARAM_COMMIT = "code_commit"  # of the code the worker ran (a Ray node's: the driver's, shipped with the task)
PARAM_RAY_NODE = "ray.node"  # the Ray node a run trained on: host and node id (Ray runs only)
PARAM_HARDWARE = "hardware"
PARAM_PRECISION = "precision"
PARAM_JIT_COMPILE = "jit_compile"  # what was asked: auto | on | off
PARAM_WEIGHTS = "weights"
PARAM_DEVICE = "device"
PARAM_DETERMINISTIC = "deterministic"
PARAM_TF32 = "tf32"  # the backend's TF32 switches as the worker set them (off unless --precision tf32)

# Settings of the trained model, known once it is built: params, not metrics (they are not results
# and draw no chart). Stores written before this layout hold them as metrics under LEGACY_METRIC.
PARAM_PARAMS = "model.params"
PARAM_TRAINABLE_PARAMS = "model.trainable_params"
PARAM_EVALUATION_BATCH = "evaluation.batch_size"
PARAM_JIT_RESOLVED = "jit_compile.resolved"  # what "auto" became on this backend: on | off
PARAM_BN_RECALIBRATED = "bn_recalibration.layers"  # BatchNorm layers recalibrated after training (0: none)
LEGACY_METRIC = {
    PARAM_PARAMS: "params",
    PARAM_TRAINABLE_PARAMS: "trainable_params",
    PARAM_EVALUATION_BATCH: "evaluation_batch",
    PARAM_JIT_RESOLVED: "jit_compile",
}

# Metrics of a child run. The part before "/" is the section the MLflow UI draws a chart in;
# sections sort alphabetically, so "accuracy" and "loss" (the results and their curves) come
# first, then "overhead", "time" and "training".
METRIC_TEST_ACCURACY = "accuracy/test"  # logged once at the end
METRIC_TEST_LOSS = "loss/test"
# Where the profile recalibrates BatchNorm (and the model has any): the test accuracy the model
# had with the moving averages training left, before they were recomputed.
METRIC_TEST_ACCURACY_BEFORE_BN = "accuracy/test_before_bn_recalibration"
METRIC_TRAIN_SECONDS = "time/train_seconds"
METRIC_EVALUATION_SECONDS = "time/evaluation_seconds"
METRIC_SECONDS_PER_EPOCH = "time/seconds_per_epoch"
METRIC_IMAGES_PER_SECOND = "time/images_per_second"
METRIC_EPOCHS_RUN = "training/epochs_run"
METRIC_BEST_EPOCH = "training/best_epoch"
METRIC_CHECKPOINTS = "training/checkpoints"  # written by this process (harness.run.checkpoint)
METRIC_CHECKPOINT_SECONDS = "time/checkpoint_seconds"  # spent capturing and writing them
# Other work's share of the CPUs this run trained on, 0–1, over its epochs (harness.environment.
# OthersCpu): 0.5 on 2 cores means another job held about one of them, and the times read slow.
METRIC_OTHERS_CPU = "time/others_cpu"
OVERHEAD_PREFIX = "overhead/"  # + <phase>_seconds: where a run's wall time goes besides fit and predict

# Per-epoch metrics (step = epoch, from 1): what Keras calls each value → its name in MLflow.
EPOCH_METRICS = {
    "accuracy": "accuracy/train",
    "val_accuracy": "accuracy/validation",
    "loss": "loss/train",
    "val_loss": "loss/validation",
    "epoch_seconds": "time/epoch_seconds",
    "others_cpu": "time/epoch_others_cpu",  # the same share, epoch by epoch
    "learning_rate": "training/learning_rate",  # only where a callback can change it
}
METRIC_LEARNING_RATE = EPOCH_METRICS["learning_rate"]
# The curves the seed-band plots draw, by their Keras names.
CURVE_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")

# Where stores written before this layout logged the same values (readers fall back to them).
LEGACY_NAMES: dict[str, tuple[str, ...]] = {
    METRIC_TEST_ACCURACY: ("test_accuracy",),
    METRIC_TEST_LOSS: ("test_loss",),
    METRIC_TRAIN_SECONDS: ("train_seconds",),
    METRIC_EVALUATION_SECONDS: ("evaluation_seconds",),
    METRIC_SECONDS_PER_EPOCH: ("seconds_per_epoch",),
    METRIC_IMAGES_PER_SECOND: ("images_per_second",),
    METRIC_EPOCHS_RUN: ("epochs_run",),
    METRIC_BEST_EPOCH: ("best_epoch",),
    **{name: (keras_name,) for keras_name, name in EPOCH_METRICS.items()},
    **{
        f"{OVERHEAD_PREFIX}{phase}_seconds": (f"overhead.{phase}_seconds",)
        for phase in ("startup", "import", "store", "data", "build", "logging")
    },
}

# Metrics of a parent run: a few figures of the recipe's leaderboard row, in the order a reader
# wants them. Every accuracy in MLflow is a fraction (0.7151 = 71.51 %), as Keras reports it and as
# children log it; the numbers make MLflow's alphabetical order that reading order in every view.
# Interval bounds are cut at 0 and 1 (the terminal prints them 0* and 100*). No reader depends on
# them (the leaderboard is rebuilt from the children); stores written before this layout carry
# board/*_pct metrics (in %) and n, test_accuracy_mean, test_accuracy_std, left as they were.
BOARD_PREFIX = "board/"
BOARD_MEAN = "board/1_mean"  # mean test accuracy over the finished seeds
BOARD_STD = "board/2_std"  # their sample standard deviation
BOARD_N = "board/3_n"  # finished seeds
BOARD_CI_LOWER = "board/4_ci_lower"  # 95% confidence interval of the mean
BOARD_CI_UPPER = "board/4_ci_upper"
BOARD_PI_LOWER = "board/5_pi_lower"  # 95% prediction interval of one more run
BOARD_PI_UPPER = "board/5_pi_upper"
BOARD_DELTA_VS_LEADER = "board/6_delta_vs_leader"  # mean − the leader's mean
BOARD_P_VS_LEADER = "board/7_p_vs_leader_holm"  # Welch's p, Holm-adjusted across the board
BOARD_CLAIMED = "board/8_claimed"  # the report's single-run test accuracy
BOARD_CLAIM_IN_PI = "board/9_claim_in_pi"  # 1 if that claim lies inside our prediction interval, else 0
BOARD_METRICS = (
    BOARD_MEAN,
    BOARD_STD,
    BOARD_N,
    BOARD_CI_LOWER,
    BOARD_CI_UPPER,
    BOARD_PI_LOWER,
    BOARD_PI_UPPER,
    BOARD_DELTA_VS_LEADER,
    BOARD_P_VS_LEADER,
    BOARD_CLAIMED,
    BOARD_CLAIM_IN_PI,
)

# Experiment tags. The MLflow UI's own: what kind of experiment it is, and its description.
TAG_EXPERIMENT_KIND = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"  # "Model training" in the UI, not GenAI
# Run tags MLflow fills its Source, Version and Created by columns from.
TAG_SOURCE_NAME = "mlflow.source.name"
TAG_SOURCE_TYPE = "mlflow.source.type"
TAG_SOURCE_COMMIT = "mlflow.source.git.commit"
TAG_USER = "mlflow.user"
TAG_RUN_NAME = "mlflow.runName"
DATASET_CONTEXT = "mlflow.data.context"  # input tag: train | validation | test

# Artifacts.
ARTIFACT_CONFUSION_CSV = "confusion_matrix.csv"
ARTIFACT_SEED_BANDS = "seed_bands"  # folder on a parent run
ARTIFACT_ADAPTIVE_PLAN = "adaptive_plan.json"  # on a profile's leaderboard run: the rounds of --seeds auto
ARTIFACT_LEADERBOARD_TABLE = "leaderboard_table.json"  # the board as an MLflow table (sortable in the UI)


def metric(metrics: dict[str, float], name: str) -> float | None:
    """A run's ``name`` metric, read under its current name or, for an older store, an old one."""
    for candidate in (name, *LEGACY_NAMES.get(name, ())):
        if candidate in metrics:
            return metrics[candidate]
    return None


def setting(params: dict[str, str], metrics: dict[str, float], name: str) -> str | None:
    """A model setting (``PARAM_PARAMS`` …): the param, or in an older store the metric it was
    logged as then (``1024.0`` read back as ``"1024"``)."""
    if name in params:
        return params[name]
    value = metrics.get(LEGACY_METRIC.get(name, ""))
    if value is None:
        return None
    return str(int(value)) if float(value).is_integer() else str(value)
