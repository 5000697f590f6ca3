"""sasa-lab's platform: study runner, promotion and Python API; from the repo root it also stands in for the
standard-library ``platform`` module.

The same folder is importable under two names:

- ``platform`` — ``python -m platform.study`` from the repo root puts the root first on ``sys.path``, so every
  ``import platform`` in the process (torch, Lightning, mlflow, ``uuid``, pytest) gets this package. It therefore
  first executes the running interpreter's own stdlib ``platform`` source in this namespace, making the package a
  strict superset of the standard module, and imports nothing else here (submodules are imported explicitly).
- ``sasa_lab`` — the installed name (``pip install``), usable where the standard ``platform`` is already imported
  (Jupyter, IPython, pytest plugins). Under this name the stdlib source is not executed (nothing needs it) and the
  Python API is exported: :func:`run_study`, :func:`load_results`, :func:`build_report`, :func:`promote` and
  :class:`SasaClassifier` (see :mod:`.api`).

Inside the package every import is relative, so the code runs unchanged under either name.
"""


def _load_stdlib_platform(namespace: dict) -> None:
    import importlib.machinery as _machinery  # late: no module-level imports here
    import sysconfig as _sysconfig  # late: as above

    stdlib_dir = _sysconfig.get_paths()["stdlib"]
    spec = _machinery.PathFinder.find_spec("platform", [stdlib_dir])
    if spec is None or spec.loader is None:  # pragma: no cover - a broken interpreter install
        raise ImportError(f"cannot find the standard-library 'platform' module in {stdlib_dir}")
    code = spec.loader.get_code("platform")
    exec(code, namespace)


if __name__ == "platform":
    _load_stdlib_platform(globals())
else:  # the installed name: the Python API (assigned after its import, so ``promote`` is the function)
    import warnings as _warnings

    with _warnings.catch_warnings():
        # In a notebook without ipywidgets the first import of tqdm.auto (mlflow, Lightning, Optuna do it) warns
        # "IProgress not found" and falls back to plain bars; the study shows no bars there (study/run.py).
        _warnings.simplefilter("ignore")
        import tqdm.auto  # noqa: F401

    from .api import Promotion, SasaClassifier, build_report, load_results, promote, run_study

    __all__ = ["Promotion", "SasaClassifier", "build_report", "load_results", "promote", "run_study"]
del _load_stdlib_platform
