"""The Python API (``sasa_lab``) as users get it: the project installed from a wheel, used from a fresh interpreter
or a Jupyter kernel where the standard-library ``platform`` is already imported."""
