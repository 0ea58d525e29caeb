"""The work model: input files, pieces and tasks, partial results, the grow-only job state."""
