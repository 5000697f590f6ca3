"""The end-of-study summary reads in a narrow terminal: short design-point labels, and no label, verdict word or
interval cut, at COLUMNS=80 and below."""

from __future__ import annotations

import pytest
from rich.console import Console

from dashboards.verdicts import Verdict
from platform.labels import legend, short_labels, split_key
from platform.study.summary import PointSummary, render_summary

KEYS = ["window_size=3", "window_size=5", "window_size=7", "window_size=9", "window_size=11"]
REFERENCE = "window_size=7"


def _rows(keys: list[str]) -> list[PointSummary]:
    return [PointSummary(key=k, values=(0.91 + i / 100, 0.93 - i / 200, 0.9), n_complete=3, n_pruned=0, n_failed=0,
                         params=123_456, flops=12_345_678) for i, k in enumerate(keys)]


def _verdicts(keys: list[str], reference: str) -> dict[str, Verdict]:
    words = ["undecided", "equivalent", "better", "worse"]
    return {
        k: Verdict(point=k, reference=reference, verdict=words[i % 4], test="tost" if i % 4 == 1 else None,
                   delta=-1.0 + i / 10, ci_low=-1.0, ci_high=0.25 + i, p_value=0.5, p_boundary=0.01,
                   p_equivalence=0.2, eq_boundary=0.05, n=3, seeds_needed=12, done=True)
        for i, k in enumerate(k for k in keys if k != reference)
    }


def _render(keys: list[str], reference: str, width: int) -> str:
    console = Console(width=width, record=True, color_system=None)
    render_summary(_rows(keys), metric="val/acc", direction="maximize", console=console,
                   found=_verdicts(keys, reference))
    return console.export_text()


def test_short_labels_are_unique_and_shorter() -> None:
    assert short_labels(KEYS) == {k: f"k={k.split('=')[1]}" for k in KEYS}
    search = "window_size=7,heads=4,pos_enc=relative,stem_mixtures=2"
    assert short_labels([search]) == {search: "k=7 heads=4 pos=relative m=2"}
    backbone = ["backbone=conv,attention_groups=null", "backbone=null,attention_groups=[2, 3, 4]"]
    assert short_labels(backbone) == {backbone[0]: "backbone=conv", backbone[1]: "groups=[2, 3, 4]"}
    assert split_key(backbone[1]) == [("backbone", "null"), ("attention_groups", "[2, 3, 4]")]
    # Two keys that would shorten alike keep their full keys.
    clash = ["model.window_size=3", "window_size=3"]
    assert short_labels(clash) == {k: k for k in clash}
    assert legend(KEYS) == "k = window_size"


@pytest.mark.parametrize("width", [80, 60])
def test_summary_at_narrow_widths_keeps_labels_verdicts_and_intervals_whole(width: int) -> None:
    text = _render(KEYS, REFERENCE, width)
    assert max(len(line) for line in text.splitlines()) <= width, text
    assert "…" not in text, text
    lines = text.splitlines()
    for key in KEYS:
        label = f"k={key.split('=')[1]}"
        assert any(label in line.replace("│", " ").split() for line in lines), (label, text)
    for word in ("undecided", "equivalent (tost)", "better", "worse", "reference"):
        assert word in text, (word, text)
    assert "[-1.0000, +0.2500]" in text, text
    assert "k = window_size" in text


def test_summary_at_80_columns_with_long_search_keys() -> None:
    keys = [f"window_size={k},heads={h},pos_enc=relative,stem_mixtures={m}" for k, h, m in
            [(3, 2, 1), (5, 4, 2), (7, 8, 4), (9, 2, 1)]]
    text = _render(keys, keys[2], 80)
    assert max(len(line) for line in text.splitlines()) <= 80 and "…" not in text, text
    for label in short_labels(keys).values():
        assert label in text, (label, text)


def test_wide_terminal_gets_one_table() -> None:
    text = _render(KEYS, REFERENCE, 200)
    header = next(line for line in text.splitlines() if "┃ design point" in line)
    assert "verdict" in header and "val/acc" in header, text
