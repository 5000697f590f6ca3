"""A study stored by an older version (explicit model defaults, options added since missing) resumes; a change
that alters results is still refused."""

from __future__ import annotations

import copy

from platform.spec import compare, parse_spec
from platform.spec.compare import result_changes
from platform.spec.sections import SECTIONS
from platform.spec.study_spec import StudySpec
from sasa.models.factory import DEFAULTS

SPEC = {
    "name": "compat",
    "data": {"source": "digits", "image_size": 16},
    "model": {"name": "resnet26", "backbone": "attention", "small_input": True, "width": 0.25, "heads": 4},
    "train": {"epochs": 1, "batch_size": 64},
    "search": {"design": "grid", "parameters": {"window_size": [3, 5]}, "seeds": [0]},
}


def _current() -> dict:
    return parse_spec(copy.deepcopy(SPEC)).resolved_dict()


def _as_stored_by_an_older_version() -> dict:
    old = _current()
    for key, value in old["model"].items():  # older versions stored the defaults explicitly
        if value is None and key in DEFAULTS:
            old["model"][key] = DEFAULTS[key]
    old["model"].pop("backend", None)  # options added since are missing
    old["train"].pop("compile", None)
    old["train"].pop("channels_last", None)
    return old


def test_same_spec_has_no_changes() -> None:
    assert result_changes(_current(), _current()) == []


def test_older_stored_spec_of_the_same_study_resumes() -> None:
    assert result_changes(_as_stored_by_an_older_version(), _current()) == []


def test_a_result_changing_edit_is_reported() -> None:
    new = _current()
    new["train"]["lr"] = new["train"]["lr"] * 2
    assert result_changes(_as_stored_by_an_older_version(), new) == ["train.lr"]


def test_a_new_option_set_away_from_its_default_is_a_change() -> None:
    new = _current()
    new["train"]["channels_last"] = True
    assert result_changes(_as_stored_by_an_older_version(), new) == ["train.channels_last"]


def test_null_model_option_is_the_factory_default_not_any_value() -> None:
    old = _as_stored_by_an_older_version()
    old["model"]["kernel_size"] = 3  # stored explicitly, today null → the factory's 7
    changes = result_changes(old, _current())
    assert changes == ["model.kernel_size"]


def test_non_result_sections_are_ignored() -> None:
    new = _current()
    new["description"] = "another description"
    new["tracking"] = "http://127.0.0.1:5000"
    assert result_changes(_current(), new) == []


def test_the_comparison_knows_every_section_as_the_study_spec_types_it() -> None:
    """``compare`` keeps its own section → model map (to stay below ``study_spec``): it must be StudySpec's."""
    assert set(compare._SECTION_MODELS) == set(SECTIONS)
    assert {n: StudySpec.model_fields[n].annotation for n in SECTIONS} == compare._SECTION_MODELS
