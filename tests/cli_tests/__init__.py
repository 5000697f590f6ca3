"""Command-line contract tests that run the three commands as processes (bad input, exit codes, side effects)."""
