"""The MLflow store: which one and how its failures read, the one gateway to it, the claims that
decide which process trains which run, the names logged there, the spool for a refused write."""
