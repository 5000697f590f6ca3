"""Two-factor studies: main effects and the interaction, paired by seed, on data shaped like a study's own (float32
fractions k/N of a finite split, few seeds, ties, A/A), and the report section built from design points."""

from __future__ import annotations

import numpy as np
import pytest

from dashboards import contrasts, interaction, sequential, stats, ties
from dashboards.data import PointData, StudyInfo

N = 270  # the digits validation split of the ready studies
EFFECT = 0.02  # 5.4 examples
LIST = contrasts.contrast_list(2, 2)  # A's main effect, B's, the interaction


def stored(counts: np.ndarray, examples: int = N) -> np.ndarray:
    """Correct-example counts as the trials store them: float32 k/N."""
    return (np.asarray(counts, dtype=float) / examples).astype(np.float32).astype(float)


def decide(counts: np.ndarray, *, examples: int = N, effect: float = EFFECT) -> contrasts.Found:
    """Verdicts of one 2×2 study from counts (A, B, seeds), read at 1/N as the report reads them."""
    values = np.rint(stored(counts, examples) * examples) / examples
    per_seed = contrasts.contrast_values(values, LIST)[None]
    return contrasts.decide(per_seed, LIST, effect=effect, sign=1, alpha=stats.ALPHA, step=1 / examples,
                            counts=True)


def cells(base: float, a: float, b: float, ab: float, noise: np.ndarray) -> np.ndarray:
    """Counts of a 2×2 grid: baseline ``base``, A's effect ``a``, B's ``b``, interaction ``ab`` (examples)."""
    mean = base + np.array([[0.0, b], [a, a + b + ab]])
    return np.rint(mean[:, :, None] + noise)


def test_the_contrasts_of_a_grid() -> None:
    grid = np.array([[[1.0], [2.0]], [[4.0], [9.0]]])  # y(a0,b0)=1, y(a0,b1)=2, y(a1,b0)=4, y(a1,b1)=9
    values = contrasts.contrast_values(grid, LIST)[:, 0]
    assert values.tolist() == [(3 + 7) / 2, (1 + 5) / 2, 7 - 3]
    assert [(c.kind, c.runs, c.units) for c in contrasts.contrast_list(3, 2)] == [
        ("main", 4, 2), ("main", 4, 2), ("main", 6, 3), ("interaction", 4, 1), ("interaction", 4, 1)]


def test_zero_probability_reduces_to_the_two_run_bound_and_grows_with_four_runs() -> None:
    for steps in (1.0, 2.0, 5.4):
        assert contrasts._zero_probability(2, steps) == pytest.approx(ties.zero_probability(steps), abs=5e-4)
    # four rounding errors can hide up to two examples: a true interaction of 1.5 examples can read 0 every time
    assert contrasts.zero_probability(4, 1.5) == pytest.approx(1.0)
    assert contrasts.zero_probability(4, 5.4) >= ties.zero_probability(5.4) - 1e-4
    # decreasing in the margin, so that beyond EXACT_UP_TO the value there is an upper bound
    q = [contrasts.zero_probability(4, e) for e in (1.5, 2.5, 4.0, 8.0, contrasts.EXACT_UP_TO)]
    assert q == sorted(q, reverse=True) and q[-1] < 0.02


def test_holm_adjusted_matches_the_ablation_tables_holm() -> None:
    p = np.random.default_rng(3).random((20, 5))
    for row, adjusted in zip(p, contrasts.holm_adjusted(p), strict=True):
        assert adjusted.tolist() == pytest.approx(stats.holm(row.tolist()))


def test_main_effects_without_interaction_claim_no_interaction() -> None:
    noise = np.random.default_rng(11).normal(0.0, 2.0, (2, 2, 6))
    found = decide(cells(160, a=20, b=-15, ab=0, noise=noise))
    assert found.verdict[0].tolist()[:2] == [sequential.BETTER, sequential.WORSE]
    assert found.verdict[0, 2] not in (sequential.BETTER, sequential.WORSE)
    assert abs(found.delta[0, 2]) < EFFECT


def test_a_planted_interaction_is_found() -> None:
    noise = np.random.default_rng(5).normal(0.0, 2.0, (2, 2, 6))
    found = decide(cells(160, a=0, b=0, ab=25, noise=noise))  # A helps only at b1
    assert found.verdict[0, 2] == sequential.BETTER
    assert found.delta[0, 2] == pytest.approx(found.delta[0, 2])  # finite
    assert found.p_holm[0, 2] < stats.ALPHA


def test_aa_data_claims_nothing() -> None:
    """Four cells from one distribution: no main effect, no interaction claimed in 200 studies at α."""
    rng = np.random.default_rng(21)
    claims = 0
    for _ in range(200):
        found = decide(cells(160, 0, 0, 0, rng.normal(0.0, 3.0, (2, 2, 4))))
        claims += bool(np.isin(found.verdict, (sequential.BETTER, sequential.WORSE)).any())
    assert claims <= 200 * (stats.ALPHA + 0.03)


def test_identical_cells_are_equivalent_only_when_the_margin_spans_enough_examples() -> None:
    """The parameters do not reach training: every cell the same count seed by seed (an A/A of identical runs)."""
    same = np.broadcast_to(np.array([150.0, 152.0, 149.0]), (2, 2, 3))
    found = decide(same)  # margin 5.4 examples: q₄(5.4)³ ≈ 1e-4 < α
    assert found.identical[0].all() and (found.p_value[0] == 1.0).all()
    assert found.verdict[0].tolist() == [sequential.EQUIVALENT] * 3
    coarse = decide(np.broadcast_to(np.array([30.0, 31.0, 29.0]), (2, 2, 3)), examples=50)  # margin 1 example
    assert coarse.verdict[0, 2] == sequential.UNDECIDED  # four runs can hide a true interaction of one example
    assert coarse.p_equivalence[0, 2] == pytest.approx(1.0)


def test_a_constant_interaction_is_a_sign_test_not_an_infinite_t() -> None:
    """The same +9 examples on every seed, stored as float32 fractions (differences off by ~1e-8)."""
    base = np.array([100.0, 131.0, 117.0])
    grid = np.stack([np.stack([base, base + 3]), np.stack([base + 1, base + 13])])  # DoD = 13 − 3 − 1 = 9
    found = decide(grid)
    assert found.degenerate[0, 2] and not found.identical[0, 2]
    assert found.p_value[0, 2] == pytest.approx(2.0 ** (1 - 3))  # exact sign test, two-sided, 3 seeds
    assert found.verdict[0, 2] == sequential.UNDECIDED


def test_few_seeds_are_refused_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="need ≥ 2 paired seeds"):
        contrasts.decide(np.zeros((1, 3, 1)), LIST, effect=EFFECT, sign=1, alpha=0.05, step=1 / N, counts=True)


# --- the report section from design points ---------------------------------------------------------------------


def _info(parameters: dict, effect: float | None = EFFECT, reference: dict | None = None) -> StudyInfo:
    search = {"design": "grid", "parameters": parameters, "seeds": [0, 1, 2, 3]}
    if effect is not None:
        search["effect"] = effect
    return StudyInfo(name="two", design="grid", metric="val/acc", direction="maximize", second=None,
                     parameters=parameters, reference=reference, seeds=[0, 1, 2, 3], model_name="resnet26",
                     description="", parent_run_id=None, spec={"search": search},
                     reference_levels={k: str(v) for k, v in (reference or {}).items()} or None,
                     examples={"val": N})


def _points(values: dict[tuple, dict[int, float]], names: tuple[str, ...]) -> list[PointData]:
    return [PointData(",".join(f"{n}={v}" for n, v in zip(names, key, strict=True)),
                      {n: str(v) for n, v in zip(names, key, strict=True)}, dict(zip(names, key, strict=True)),
                      values=dict(seeds), n_complete=len(seeds)) for key, seeds in values.items()]


def _window_x_encoding(ab: float) -> list[PointData]:
    rng = np.random.default_rng(8)
    noise = rng.normal(0.0, 2.0, (2, 2, 4))
    counts = cells(160, a=10, b=12, ab=ab, noise=noise)
    values = {(k, p): {s: float(stored(counts[i, j, s])) for s in range(4)}
              for i, k in enumerate((3, 7)) for j, p in enumerate(("none", "relative"))}
    return _points(values, ("window_size", "pos_enc"))


def test_the_section_of_a_two_factor_grid() -> None:
    parameters = {"window_size": {"values": [3, 7]}, "pos_enc": {"values": ["none", "relative"]}}
    found, why = interaction.analyse(_window_x_encoding(ab=30), _info(parameters))
    assert why is None and found is not None
    assert found.levels == (("3", "7"), ("none", "relative")) and found.seeds == (0, 1, 2, 3)
    assert [r.verdict for r in found.rows] == ["better", "better", "interaction"]
    text = interaction.markdown(found, "val/acc")
    assert "| window_size \\ pos_enc | none | relative |" in text
    lines = interaction.terminal_lines(found, "val/acc", 80)
    assert all(len(line) <= 80 for line in lines)
    at = next(i for i, line in enumerate(lines) if line.startswith("window_size 7 − 3 at pos_enc=relative"))
    assert lines[at + 1].startswith("  Δ [95 % CI] +0.") and lines[at + 1].endswith("· interaction")
    assert interaction.interaction_plot(found, metric="val/acc", direction="maximize").startswith(b"\x89PNG")
    narrow = interaction.terminal_lines(found, "val/acc", 40)
    assert all(len(line) <= 40 for line in narrow)


def test_the_reference_level_is_the_baseline_and_no_effect_gives_no_verdicts() -> None:
    parameters = {"window_size": {"values": [3, 7]}, "pos_enc": {"values": ["none", "relative"]}}
    found, _ = interaction.analyse(_window_x_encoding(ab=0), _info(parameters, effect=None,
                                                                   reference={"window_size": 7}))
    assert found is not None and found.levels[0] == ("7", "3")
    assert {r.verdict for r in found.rows} == {"—"} and "No verdicts" in interaction.caption(found, "val/acc")


def test_more_than_two_factors_say_so_in_one_line() -> None:
    values = {(k, p, h): {0: 0.5, 1: 0.6} for k in (3, 7) for p in ("none", "relative") for h in (1, 2)}
    parameters = {n: {"values": []} for n in ("window_size", "pos_enc", "heads")}
    found, why = interaction.analyse(_points(values, ("window_size", "pos_enc", "heads")), _info(parameters))
    assert found is None and why is not None and "needs exactly two factors" in why


def test_missing_cells_and_unshared_seeds_are_named() -> None:
    parameters = {"window_size": {"values": [3, 7]}, "pos_enc": {"values": ["none", "relative"]}}
    points = _window_x_encoding(ab=0)
    points[0].values[9] = 0.6  # a seed only one cell has
    found, _ = interaction.analyse(points, _info(parameters))
    assert found is not None and found.seeds == (0, 1, 2, 3) and "seeds 9 are left out" in found.notes[0]
    found, why = interaction.analyse(points[:3], _info(parameters))
    assert found is None and why is not None and "window_size=7,pos_enc=relative" in why
