"""Study specification: the validated, frozen description of one study (``studies/*.yaml``).

A study trains the models of Stand-Alone Self-Attention (Ramachandran et al., NeurIPS 2019) over a search space
(the paper's ablations: window size k, heads, positional encoding, stem, which layer groups use attention) and
reports a validation metric per design point and seed.  The YAML has one section per concern: ``data``, ``model``
(passed to ``sasa.create_model``), ``train``, ``search``, ``objective``, ``pruner``, ``execution``; plus ``name``,
``description``, ``storage`` and ``tracking``.

Modules, bottom up (each imports only modules of lower levels): 1. :mod:`.errors` (:class:`SpecError`, problem
paths and messages, pydantic errors as problems), :mod:`.base` (the section base model), :mod:`.names` (the study
name rule); 2. :mod:`.reader` (safe YAML), :mod:`.values` (parameter names, encodings, levels), :mod:`.sections`,
:mod:`.seeds`; 3. :mod:`.yaml_paths` (``--set`` overrides), :mod:`.compose` (study + recipes), :mod:`.parameters`
(the ``search`` section), :mod:`.checks` (across sections); 4. :mod:`.study_spec` (:class:`StudySpec`,
:func:`load_spec`, :func:`parse_spec`), :mod:`.compare` (stored spec vs today's).
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
