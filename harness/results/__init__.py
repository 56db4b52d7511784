"""Results read back from the store and the run records: the leaderboard and its verdicts,
statistics, steps, agreement, what a parent run carries, figures, records, the README's blocks."""
