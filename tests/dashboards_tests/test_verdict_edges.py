"""The verdict edges of issue 26, each reproduced with ``dashboards.verdicts.decide`` as the study loop calls it.

1. a constant difference exactly at the margin (+1/50 with effect 0.02) read "equivalent" at some base
   accuracies and "better" or "undecided" at others, by how float32 rounded ``abs(mean) < effect``;
2. two identical pairs read "equivalent (identical)" when the effect is one example;
3. a reference that lost a seed left its comparisons "undecided" and not done, never tested in a fixed design;
5. a ``None`` value raised a bare ``TypeError``.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from dashboards import report, sequential, ties, verdicts
from dashboards.data import PointData, StudyData, StudyInfo

N, EFFECT = 50, 0.02  # the effect is one example


def f32(count: int, n: int = N) -> float:
    """An accuracy of ``count`` of ``n`` examples as the stores hold it (float32 read back as float)."""
    return float(np.float32(count / n))


def _decide(counts: dict[str, list[int | None]], *, examples: int | None = N, **kwargs: object
            ) -> dict[str, verdicts.Verdict]:
    values = {p: {s: f32(c, examples or N) for s, c in enumerate(row) if c is not None} for p, row in counts.items()}
    options = {"effect": EFFECT, "min_seeds": 3, "max_seeds": 10, "examples": examples, **kwargs}
    return verdicts.decide(values, "ref", **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("n", [7, 8, 10])
def test_a_difference_equal_to_the_effect_is_never_equivalent_at_any_base(n: int) -> None:
    found = set()
    for base in range(5, 45):  # 40 base accuracies, one more example on every seed
        result = _decide({"ref": [base] * n, "pt": [base + 1] * n})["pt"]
        found.add((result.verdict, result.test))
        assert result.verdict != "equivalent", (base, result)
    assert len(found) == 1, found  # the same counts, the same verdict at every base


def test_a_difference_at_the_margin_does_not_depend_on_the_base_with_spread() -> None:
    """Differences 0, 1, 2 examples (mean exactly one example = the effect): TOST never rejects, at any base."""
    pattern = [0, 1, 2, 1, 0, 2, 1, 1, 0, 2]
    verdicts_seen = set()
    for base in range(5, 45):
        result = _decide({"ref": [base] * 10, "pt": [base + d for d in pattern]})["pt"]
        verdicts_seen.add(result.verdict)
        assert result.p_equivalence is not None and result.p_equivalence >= 0.5
    assert verdicts_seen == {"undecided"} or "equivalent" not in verdicts_seen


def test_a_difference_just_inside_a_margin_of_several_examples_is_equivalent() -> None:
    """The exact rule still calls a constant difference below the margin equivalent (sign test, both sides)."""
    result = _decide({"ref": [30] * 10, "pt": [31] * 10}, effect=0.04)["pt"]  # 1 example, margin 2
    assert (result.verdict, result.test) == ("equivalent", "tost-sign")


def test_without_n_a_mean_within_half_a_step_of_the_margin_is_not_within() -> None:
    values = {"ref": {s: 0.5 for s in range(10)}, "pt": {s: 0.5 + EFFECT for s in range(10)}}
    result = verdicts.decide(values, "ref", effect=EFFECT, min_seeds=3, max_seeds=10)["pt"]
    assert result.verdict != "equivalent"


def test_zero_probability_of_a_one_example_margin() -> None:
    assert ties.zero_probability(1.0) == pytest.approx(0.25, abs=0.01)
    assert ties.zero_probability(0.5) == 1.0  # below one example: identical results prove nothing
    grid = [1, 1.5, 2, 3, 5.4, 10, 20, 40, 64]
    q = [ties.zero_probability(e) for e in grid]
    assert all(a >= b for a, b in itertools.pairwise(q))  # decreasing: q(64) bounds the margins beyond
    assert ties.zero_probability(1e6) == ties.zero_probability(64)
    assert ties.zero_probability(math.inf) == 0.0


def test_two_identical_pairs_are_not_equivalence_at_a_one_example_margin() -> None:
    result = _decide({"ref": [30, 31], "pt": [30, 31]}, min_seeds=2, max_seeds=2)["pt"]
    assert result.verdict == "undecided" and result.p_equivalence == pytest.approx(ties.zero_probability(1) ** 2)
    assert "identical on every seed so far" in result.note and result.seeds_needed == verdicts.SEEDS_CAP + 1
    adaptive = _decide({"ref": [30, 31], "pt": [30, 31]}, min_seeds=2, max_seeds=6)["pt"]
    bounds = sequential.boundaries(2, 6, 0.05, 1)
    needed = next(n for n, b in zip(bounds.looks, bounds.equivalence, strict=True) if 0.25**n < b)
    assert adaptive.verdict == "undecided" and not adaptive.done and adaptive.seeds_needed == needed > 2
    same = [30, 31, 29, 32, 30, 31][:needed]
    enough = _decide({"ref": same, "pt": same}, min_seeds=2, max_seeds=6)["pt"]
    assert (enough.verdict, enough.test, enough.n) == ("equivalent", "identical", needed)


def test_identical_pairs_at_a_wide_margin_are_equivalent_at_the_first_look() -> None:
    result = _decide({"ref": [150, 151], "pt": [150, 151]}, examples=270, min_seeds=2, max_seeds=2)["pt"]
    assert (result.verdict, result.test) == ("equivalent", "identical")  # 5.4 examples: q² ≈ 0.002


def test_a_reference_that_lost_a_seed_is_tested_at_its_last_look_in_a_fixed_design() -> None:
    counts = {"ref": [30, 31, 29, None, 30, 32], "pt": [40, 42, 39, 41, 40, 43]}
    failed = {"ref": {3: "non-finite training loss"}}
    result = _decide(counts, min_seeds=6, max_seeds=6, failed=failed)["pt"]
    assert (result.verdict, result.n, result.done) == ("better", 5, True)
    assert "reference ref lost seed 3 (non-finite training loss)" in result.note
    before = _decide(counts, min_seeds=6, max_seeds=6)["pt"]  # not known to be lost: waits for the 6th pair
    assert before.verdict == "undecided" and not before.done and "first look is at 6" in before.note


def test_a_lost_reference_seed_ends_an_adaptive_comparison_at_its_last_look() -> None:
    rng = np.random.default_rng(3)
    ref = [30 + int(rng.integers(-3, 4)) for _ in range(10)]
    pt = [c + int(rng.integers(-3, 4)) for c in ref]
    lost = [None if s == 4 else c for s, c in enumerate(ref)]
    result = _decide({"ref": lost, "pt": pt}, failed={"ref": {4: "CUDA out of memory"}})["pt"]
    assert result.done and result.n == 9
    assert "lost seed 4 (CUDA out of memory)" in result.note
    assert "last look" in result.note and "the 9 paired seeds there are" in result.note  # the truncated look


def test_a_comparison_decided_before_a_seed_was_lost_says_where_it_was_decided() -> None:
    """The reference lost seed 3 of 10 but the point was already clearly better at the first look (3 seeds): the
    note says 3 seeds, not the last look on the 9 pairs there are."""
    counts = {"ref": [30, 31, 29, None, 30, 32, 31, 30, 29, 31], "pt": [45, 47, 44, 46, 45, 48, 46, 45, 44, 46]}
    result = _decide(counts, failed={"ref": {3: "non-finite training loss"}})["pt"]
    assert (result.verdict, result.n, result.done) == ("better", 3, True)
    assert result.note.startswith("decided at 3 paired seeds; reference ref lost seed 3"), result.note
    assert "last look" not in result.note


def test_an_effect_below_one_example_says_identical_results_cannot_show_equivalence() -> None:
    """N = 50 and effect 0.01 (half an example): q = 1, identical pairs never decide; no '101 seeds' placeholder."""
    same = [30, 31, 29, 32, 30, 31]
    result = _decide({"ref": same, "pt": same}, effect=0.01, min_seeds=2, max_seeds=6)["pt"]
    assert result.verdict == "undecided" and result.seeds_needed == verdicts.SEEDS_CAP + 1
    assert f"identical results never show equivalence within {verdicts.SEEDS_CAP} seeds" in result.note
    assert str(verdicts.SEEDS_CAP + 1) not in result.note


def test_a_truncated_last_look_spends_the_rest_of_alpha() -> None:
    bounds = sequential.boundaries(3, 10, 0.05, 2)
    difference, equivalence = bounds.last_look(9)
    assert np.all(difference > bounds.difference[:, 9 - 3]) and equivalence > bounds.equivalence[9 - 3]
    assert bounds.last_look(2)[0] == pytest.approx([0.05, 0.025]) and bounds.last_look(2)[1] == 0.05
    assert np.all(bounds.last_look(9)[0] < 0.05)


@pytest.mark.parametrize("bad", [None, math.nan, "0.5"])
def test_a_value_that_is_not_a_number_names_the_trial(bad: object) -> None:
    values = {"ref": {0: 0.5, 1: 0.6, 2: 0.55}, "pt": {0: 0.5, 1: bad, 2: 0.6}}
    with pytest.raises(ValueError, match=r"design point 'pt', seed 1 has objective value"):
        verdicts.decide(values, "ref", effect=EFFECT, min_seeds=3, max_seeds=3)  # type: ignore[arg-type]


def _study(points: list[PointData], seeds: object) -> StudyData:
    search = {"design": "grid", "seeds": seeds, "effect": EFFECT, "reference": {"k": 7}}
    info = StudyInfo(name="s", design="grid", metric="val/acc", direction="maximize", second=None,
                     parameters={"k": {"type": "categorical", "choices": [3, 7]}}, reference={"k": 7},
                     seeds=seeds, model_name="m", description="", parent_run_id=None, spec={"search": search},
                     reference_levels={"k": "7"}, examples={"val": N})
    return StudyData(info=info, points=points, counts={"complete": sum(len(p.values) for p in points)})


def _point(k: int, counts: list[int | None], failed: dict[int, str] | None = None) -> PointData:
    values = {s: f32(c) for s, c in enumerate(counts) if c is not None}
    return PointData(key=f"k={k}", level={"k": str(k)}, raw_level={"k": k}, values=values,
                     n_complete=len(values), n_failed=len(failed or {}), failed_seeds=dict(failed or {}))


def test_the_report_says_which_reference_seeds_are_missing_and_where_the_comparison_ended() -> None:
    points = [_point(3, [40, 42, 39, 41, 40, 43]),
              _point(7, [30, 31, 29, None, 30, 32], {3: "non-finite training loss"})]
    built = report.build_report(_study(points, [0, 1, 2, 3, 4, 5]))
    row = next(r for r in built.rows if r.point.key == "k=3")
    assert row.verdict == "better" and row.decision is not None and row.decision.n == 5
    line = next(n for n in built.notes if n.startswith("k=3 vs k=7: "))
    assert "last look on the 5 paired seeds" in line and "reference k=7 lost seed 3 (non-finite training loss)" in line


def test_a_report_with_an_effect_below_one_example_says_identical_results_cannot_decide() -> None:
    same = [30, 31, 29, 32, 30, 31]
    study = _study([_point(3, same), _point(7, same)], [0, 1, 2, 3, 4, 5])
    study.info.spec["search"]["effect"] = 0.01
    built = report.build_report(study)
    line = next(n for n in built.notes if n.startswith("search.effect 0.01 is below one example"))
    assert "identical results cannot show equivalence" in line and "only identical" not in line
    row = next(r for r in built.rows if r.point.key == "k=3")
    assert row.verdict == "undecided"


def test_a_one_seed_report_says_why_it_has_no_verdicts() -> None:
    built = report.build_report(_study([_point(3, [40]), _point(7, [30])], [0]))
    assert all(r.decision is None for r in built.rows)
    assert any(n.startswith("no verdicts: search.effect is set but the study runs 1 seed") for n in built.notes)
