"""The MLflow store: the one gateway to it, the names logged there, the spool for a refused write."""
