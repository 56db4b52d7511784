"""A sweep: its plan (recipe × seed), running it through the executors, adaptive seeds."""
