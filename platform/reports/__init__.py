"""Reading a finished (or running) study for its report, and publishing the report to MLflow.

The records a trial writes are this package's contract (``records.py``), so reading them back is the platform's
job too: :mod:`.load` turns the Optuna storage and MLflow into the dashboards' plain data
(:mod:`dashboards.data`), :mod:`.publish` has the dashboards build the report and logs it to the study's parent
run. The dashboards themselves import nothing of the platform (see :mod:`.views`).
"""
