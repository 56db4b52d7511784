"""A sweep: its plan (recipe × seed), its runs through an executor (local processes or Ray tasks),
adaptive seeds."""
