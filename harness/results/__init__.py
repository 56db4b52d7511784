"""Results read back: leaderboard, statistics, steps, agreement, figures, records, the README's blocks."""
