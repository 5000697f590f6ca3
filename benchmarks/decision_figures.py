"""What a seeds budget decides, by split size N and noise in examples: the figures of docs/report.md and the README.

``python -m benchmarks.decision_figures`` writes ``benchmarks/results/decision_figures.md`` (deterministic: fixed
generators, no timing). Three tables, all from the study's own decision code:

1. **Power by N and noise** — :func:`dashboards.power.design_power` on whole examples (:mod:`dashboards.simulate`):
   a comparison with a true difference of 2σ (σ: the sd of a paired difference, seed against seed, in examples)
   among ``comparisons`` (the others null), with effect = 2σ (what the dry run assumes before trials exist), at
   N ∈ {50, 270, 10000}: how often it is called better, and the difference called better with 80 % power.
2. **The sign test's first deciding look** per budget (every paired difference equal: p = 2^(1−n) against that
   look's boundary at Holm's α/m).
3. **The embedded grid studies** as ``--dry-run`` states them (N = the digits validation split, σ = effect/2).
4. **The two-factor study's interaction** (studies/window_x_encoding.yaml, :func:`dashboards.contrasts.simulate`):
   with main effects present, how often "interaction" is called when there is none and when there is a true
   difference of differences of 2σ and 3σ (σ: the sd of a seed's difference of differences, taken as effect/2 as
   the dry run takes σ), and the interaction called with 80 % power.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from dashboards import contrasts, power, sequential
from platform.data.sources import planned_examples
from platform.search import grid_points
from platform.spec.study_spec import load_spec

EFFECT = 0.02
SPLITS = (50, 270, 10_000)
SIGMAS = (0.5, 1.0, 2.7, 10.0)  # σ of a paired difference, examples (effect 0.02 is 2σ at N = 50 and 270)
BUDGETS = ((2, 6, 4), (3, 10, 4), (3, 10, 1))  # min, max, comparisons
SIGN_BUDGETS = ((2, 6, 1), (2, 6, 4), (3, 10, 1), (3, 10, 4), (3, 20, 4))
STUDIES = ("window_size", "heads", "positional_encoding", "stem_mixtures", "backbone", "window_x_encoding")
TWO_FACTOR = "window_x_encoding"
TWO_FACTOR_STUDIES = 4000
OUT = Path(__file__).parent / "results" / "decision_figures.md"


def _mdd(found: power.DesignPower) -> str:
    return "—" if found.mdd_sigma is None else f"{found.mdd_sigma:.1f}σ"


def power_table() -> list[str]:
    lines = ["| N | σ of a difference (examples) | effect = 2σ | "
             + " | ".join(f"{lo}–{hi} seeds, {m} comp.: P(better at 2σ); 80 % at" for lo, hi, m in BUDGETS) + " |",
             "|---|---|---|" + "---|" * len(BUDGETS)]
    for n in SPLITS:
        for sigma in SIGMAS:
            cells = []
            for low, high, m in BUDGETS:
                found = power.design_power(min_seeds=low, max_seeds=high, comparisons=m, effect=2 * sigma / n,
                                           examples=n)  # σ = effect/2, as the dry run assumes before trials
                cells.append(f"{100 * found.power_2sigma:.0f} %; {_mdd(found)}")
            lines.append(f"| {n} | {sigma:g} | {2 * sigma / n:.4g} | " + " | ".join(cells) + " |")
    continuous = [power.design_power(min_seeds=lo, max_seeds=hi, comparisons=m, effect=EFFECT)
                  for lo, hi, m in BUDGETS]
    lines.append("| continuous | — | any | " + " | ".join(f"{100 * f.power_2sigma:.0f} %; {_mdd(f)}"
                                                           for f in continuous) + " |")
    return lines


def sign_table() -> list[str]:
    lines = ["| budget | comparisons | sign test decides better/worse from | equivalence by signs from |",
             "|---|---|---|---|"]
    for low, high, m in SIGN_BUDGETS:
        found = power.design_power(min_seeds=low, max_seeds=high, comparisons=m, effect=EFFECT)
        lines.append(f"| {low}–{high} | {m} | {found.sign_seeds or 'never'} | {found.tost_sign_seeds or 'never'} |")
    return lines


def study_table() -> list[str]:
    lines = ["| study | N | seeds | comparisons | 80 % power at | P(better at 2σ) |", "|---|---|---|---|---|---|"]
    for name in STUDIES:
        spec = load_spec(Path("studies") / f"{name}.yaml")
        low, high = spec.search.seed_bounds
        n = (planned_examples(spec.data, limit_val_batches=spec.train.limit_val_batches) or {}).get("val")
        comparisons = len(grid_points(spec)) - 1
        found = power.design_power(min_seeds=max(low, 2), max_seeds=high, comparisons=comparisons,
                                   effect=float(spec.search.effect), examples=n)
        lines.append(f"| {name} | {n} | {low}–{high} | {comparisons} | {_mdd(found)} | "
                     f"{100 * found.power_2sigma:.0f} % |")
    return lines


def interaction_table() -> list[str]:
    spec = load_spec(Path("studies") / f"{TWO_FACTOR}.yaml")
    low, high = spec.search.seed_bounds
    n = (planned_examples(spec.data, limit_val_batches=spec.train.limit_val_batches) or {}).get("val")
    effect = float(spec.search.effect)
    sigma = effect * n / 2  # σ of a seed's difference of differences, examples; 4 runs: per-run noise σ/2
    noise, main = sigma / 2, (3 * sigma, -2 * sigma)

    def called(k: float, seed: int) -> float:
        found = contrasts.simulate(examples=n, noise=noise, seeds=high, effect=effect, main=main,
                                   interaction=k * sigma, studies=TWO_FACTOR_STUDIES, seed=seed)
        return float(np.isin(found.verdict[:, 2], (sequential.BETTER, sequential.WORSE)).mean())

    ks = np.round(np.arange(1.0, 6.01, 0.1), 1)
    powers = [called(float(k), 100 + i) for i, k in enumerate(ks)]
    at = next((f"{k:.1f}σ" for k, p in zip(ks, powers, strict=True) if p >= 0.8), "—")
    return ["| study | N | seeds | contrasts | P(interaction) with none | at 2σ | at 3σ | 80 % power at |",
            "|---|---|---|---|---|---|---|---|",
            f"| {TWO_FACTOR} | {n} | {low}–{high} | 3 (Holm) | {100 * called(0.0, 99):.1f} % | "
            f"{100 * called(2.0, 98):.0f} % | {100 * called(3.0, 97):.0f} % | {at} |"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    text = ["# Decision figures by split size and noise", "",
            "Written by `python -m benchmarks.decision_figures` (deterministic: fixed generators; "
            f"{power.STUDIES} simulated studies per figure, effect {EFFECT}, α = 0.05).", "",
            "## Power by N and noise", "", *power_table(), "",
            "## The sign test's first deciding look", "", *sign_table(), "",
            "## The embedded grid studies (what `--dry-run` states)", "", *study_table(), "",
            "## The two-factor study's interaction (main effects present; σ of a difference of differences)", "",
            *interaction_table(), ""]
    args.out.write_text("\n".join(text))
    print("\n".join(text))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
