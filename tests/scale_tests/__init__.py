"""Scale-out tests: parallel workers, crash safety, DDP trials, PostgreSQL + MLflow server (a cluster's stores).

The checks the test files share live in ``accounting.py``; the servers in ``conftest.py`` and ``postgres.py``.
"""
