"""The bench's host reference and its --compare rule: a figure is read against the reference of the
same round, and a change is called better or WORSE only outside the spread of its rounds."""
from __future__ import annotations

from bench.__main__ import KEYS, compare, verdict
from bench.common import per_ref, ref_loop, ref_loop_ms, spread


def test_a_change_inside_the_spread_of_the_rounds_is_not_flagged() -> None:
    # UI CPU 29.3 % on a slow day against 12.5 % on a fast one: the rounds overlap, no verdict
    assert verdict("ui_cpu_pct", 12.5, 29.3, [11.0, 31.0], [25.0, 33.0]) == "same (within spread)"
    assert verdict("stream_vs_ccxt_x", 2.3, 1.18, [1.1, 2.4], None) == "same (within spread)"


def test_a_change_outside_the_spread_is_flagged_in_the_right_direction() -> None:
    assert verdict("ui_cpu_pct", 30.0, 12.0, [28.0, 32.0], [11.0, 13.0]) == "WORSE"
    assert verdict("ui_cpu_pct", 12.0, 30.0, [11.0, 13.0], [28.0, 32.0]) == "better"
    # higher is better for throughput figures
    assert verdict("stream_vs_ccxt_x", 4.2, 2.4, [4.0, 4.5], [2.2, 2.5]) == "better"
    assert verdict("stream_msgs_per_s", 9000, 23000, [8000, 9500], None) == "WORSE"


def test_without_rounds_a_small_change_is_same_and_a_large_one_says_so() -> None:
    assert verdict("startup_s", 0.89, 0.88, None, None) == "same"
    assert verdict("startup_s", 0.89, 0.35, None, None) == "WORSE (no rounds)"


def test_compare_uses_the_spreads_of_both_runs() -> None:
    figures = {"ui_cpu_pct": 12.5, "spread": {"ui_cpu_pct": [12.0, 13.0]}}
    overlapping = {"figures": {"ui_cpu_pct": 14.0}, "spread": {"ui_cpu_pct": [12.8, 16.0]}}
    apart = {"figures": {"ui_cpu_pct": 29.3}, "spread": {"ui_cpu_pct": [28.0, 31.0]}}
    line = next(ln for ln in compare(figures, overlapping) if ln.startswith("ui_cpu_pct"))
    assert line.endswith("same (within spread)")
    line = next(ln for ln in compare(figures, apart) if ln.startswith("ui_cpu_pct"))
    assert line.endswith("better")


def test_per_round_ratios_cancel_the_host_speed() -> None:
    # the same code on a host twice as slow: figure and reference both double, the ratio holds
    values = [10.0, 20.0, 11.0]
    refs = [40.0, 80.0, 44.0]
    assert per_ref(values, refs) == (0.25, [0.25, 0.25])
    assert spread([3.0, 1.0, 2.0]) == [1.0, 3.0]


def test_the_reference_is_fixed_work_and_costs_cpu_time() -> None:
    assert ref_loop(5000) == ref_loop(5000)  # deterministic: the same work every run
    assert ref_loop_ms(20_000) > 0


def test_every_issue_25_figure_is_in_the_json_line() -> None:
    for key in ("host_ref_loop_ms", "json_floor_msgs_per_s", "stream_cost_x_json_floor", "engine_only_cpu_pct",
                "engine_only_cpu_x_ref", "key_to_screen_first_ms", "ui_cpu_x_ref", "console_cpu_pts",
                "screen_kb_per_s_80x24", "startup_x_ref"):
        assert key in KEYS
