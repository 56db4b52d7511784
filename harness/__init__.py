"""cifar10-bench: the machinery that trains, tracks and ranks the recipes.

A benchmark tool sends nothing home by default: MLflow's usage telemetry is off in this process
and every process it starts (workers, probes, `bench ui`) unless the user has set
MLFLOW_DISABLE_TELEMETRY themselves (``MLFLOW_DISABLE_TELEMETRY=false`` opts in).
"""

import os

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
