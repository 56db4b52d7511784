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
TAG_WEIGHTS = "bench.weights"  # imagenet | random, on transfer runs
TAG_PLOT_ERROR = "bench.plot_error"  # a parent whose seed-band plots could not be drawn
TAG_PARENT = "mlflow.parentRunId"  # MLflow's own: nests a child under its parent
TAG_NOTE = "mlflow.note.content"  # MLflow's own: the run's description

KIND_PARENT, KIND_CHILD, KIND_LEADERBOARD = "parent", "child", "leaderboard"

# Params of a child run that the leaderboard reads back.
PARAM_REPORTED_ACCURACY = "reported.test_accuracy"  # the report's claim, "None" where it makes none
PARAM_REPORTED_PARAMS = "reported.params"
PARAM_COMMIT = "code_commit"
PARAM_HARDWARE = "hardware"
PARAM_PRECISION = "precision"
PARAM_JIT_COMPILE = "jit_compile"
PARAM_WEIGHTS = "weights"
PARAM_DEVICE = "device"
PARAM_DETERMINISTIC = "deterministic"

# Metrics of a child run, logged once at its end.
METRIC_TEST_ACCURACY = "test_accuracy"
METRIC_TEST_LOSS = "test_loss"
METRIC_PARAMS = "params"
METRIC_TRAIN_SECONDS = "train_seconds"
METRIC_IMAGES_PER_SECOND = "images_per_second"
METRIC_EPOCHS_RUN = "epochs_run"

# Metrics of a child run, logged per epoch (step = epoch, from 1).
CURVE_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")

# Metrics of a parent run: the aggregates over its FINISHED seeds.
METRIC_N = "n"
METRIC_MEAN = "test_accuracy_mean"
METRIC_STD = "test_accuracy_std"

# Artifacts.
ARTIFACT_CONFUSION_CSV = "confusion_matrix.csv"
ARTIFACT_SEED_BANDS = "seed_bands"  # folder on a parent run
ARTIFACT_ADAPTIVE_PLAN = "adaptive_plan.json"  # on a profile's leaderboard run: the rounds of --seeds auto
