"""Writing the results: contract files, terminal summary, progress."""
