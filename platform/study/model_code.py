"""The source a logged model needs to unpickle elsewhere: ``sasa``, plus a user's own backbone code.

MLflow pickles the network by reference to its classes and ships the folders or files given as ``code_paths``
(put on ``sys.path`` when the model loads). ``sasa`` always travels. A model built by a researcher's builder
(``model.config["name"]`` is ``package.module:function``, docs/backbones.md) also needs the top-level package or
module of that builder and of every module class in the network that is the user's own: anything not in the
standard library, site-packages or ``torch``/``sasa``.
"""

from __future__ import annotations

import sys
import sysconfig
from pathlib import Path
from typing import Any

import sasa
from sasa.models.registry import is_import_name

# Never shipped: torch and sasa travel anyway; the platform (never needed to unpickle a network, and a folder named
# `platform` on a loader's sys.path would shadow the standard library's) is not model code.
_SHIPPED_ELSEWHERE = ("torch", "sasa", "builtins", "__main__", "platform", "sasa_lab", "dashboards")


def _installed_roots() -> list[Path]:
    keys = ("stdlib", "platstdlib", "purelib", "platlib")
    return [Path(p).resolve() for p in {sysconfig.get_paths()[k] for k in keys}]


def _own_source(top: str) -> Path | None:
    """The file or package folder of top-level module ``top`` if it is the user's own code, else None."""
    module = sys.modules.get(top)
    file = getattr(module, "__file__", None)
    if top in _SHIPPED_ELSEWHERE or not file:
        return None
    path = Path(file).resolve()
    if any(path.is_relative_to(root) for root in _installed_roots()):
        return None
    return path.parent if path.name == "__init__.py" else path


def model_code_paths(model: Any) -> list[str]:
    """``code_paths`` for ``mlflow.pytorch.log_model`` of ``model`` (a network built by ``sasa.create_model``)."""
    paths = [str(Path(sasa.__file__).resolve().parent)]
    name = (getattr(model, "config", None) or {}).get("name")
    if not is_import_name(name):
        return paths
    tops = [name.partition(":")[0].split(".")[0]]
    tops += [type(m).__module__.split(".")[0] for m in model.modules()]
    for top in dict.fromkeys(tops):
        source = _own_source(top)
        if source is not None and str(source) not in paths:
            paths.append(str(source))
    return paths
