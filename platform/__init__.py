"""sasa-lab study runner, which also stands in for the standard-library ``platform`` module.

``python -m platform.study`` puts the repo root first on ``sys.path``, so every ``import platform`` in the
process (torch, Lightning, mlflow, ``uuid``, pytest) gets this package.  It therefore first executes the
running interpreter's own stdlib ``platform`` source in this namespace, making the package a strict superset
of the standard module.  Keep this file free of other imports: submodules are imported explicitly.
"""

def _load_stdlib_platform(namespace: dict) -> None:
    import importlib.machinery as _machinery
    import sysconfig as _sysconfig

    stdlib_dir = _sysconfig.get_paths()["stdlib"]
    spec = _machinery.PathFinder.find_spec("platform", [stdlib_dir])
    if spec is None or spec.loader is None:  # pragma: no cover - a broken interpreter install
        raise ImportError(f"cannot find the standard-library 'platform' module in {stdlib_dir}")
    code = spec.loader.get_code("platform")
    exec(code, namespace)


_load_stdlib_platform(globals())
del _load_stdlib_platform
