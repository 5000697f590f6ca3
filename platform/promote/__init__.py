"""Promotion of a study's champion into the MLflow Model Registry (``python -m platform.promote STUDY``).

Modules: :mod:`.champion` (the winner rule and how a champion is described), :mod:`.registry` (model versions and
aliases), :mod:`.verification` (re-evaluation on the test split), :mod:`.promotion` (:func:`promote`, the whole
flow as one typed call), ``__main__`` (the command line).
"""
