"""Tests of dashboards/: statistics, verdicts, the report and its command. Synthetic stored studies: ``stored.py``."""
