"""Study specification: the validated, frozen description of one study (``studies/*.yaml``).

A study trains the models of Stand-Alone Self-Attention (Ramachandran et al., NeurIPS 2019) over a search space
(the paper's ablations: window size k, heads, positional encoding, stem, which layer groups use attention) and
reports a validation metric per design point and seed.  The YAML has one section per concern: ``data``, ``model``
(passed to ``sasa.create_model``), ``train``, ``search``, ``objective``, ``pruner``, ``execution``; plus ``name``,
``description``, ``storage`` and ``tracking``.

Modules, bottom up: :mod:`.yaml_paths` (YAML, ``--set``, problem paths), :mod:`.errors`, :mod:`.values` (parameter
names and encodings), :mod:`.sections`, :mod:`.parameters` (the ``search`` section), :mod:`.checks` (across
sections), :mod:`.study_spec` (:class:`StudySpec`, :func:`load_spec`, :func:`parse_spec`).
"""

from .errors import SpecError
from .names import name_problem, study_target
from .parameters import ParameterSpec, SearchSpec
from .sections import (
    LOGGED_METRICS,
    VALIDATION_METRICS,
    AugmentSpec,
    DataSpec,
    ExecutionSpec,
    ModelSpec,
    ObjectiveSpec,
    PrunerSpec,
    TrainSpec,
)
from .study_spec import SECTIONS, StudySpec, load_spec, parse_spec

__all__ = [
    "LOGGED_METRICS", "SECTIONS", "VALIDATION_METRICS", "AugmentSpec", "DataSpec", "ExecutionSpec", "ModelSpec",
    "ObjectiveSpec", "ParameterSpec", "PrunerSpec", "SearchSpec", "SpecError", "StudySpec", "TrainSpec",
    "load_spec", "name_problem", "parse_spec", "study_target",
]
