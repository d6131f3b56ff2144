import pytest

from bench.pipeline_bench import CASES, Measurement, Pair, pair_orders, report_pairs, run_pairs


def measured(case: str, wall: float, startup: float) -> Measurement:
    return Measurement(CASES[case], 10.0, 600.0, wall, startup, 5 * 2**30)


def pair(p2_wall: float, p1_wall: float, p2_first: bool, startup: float = 20.0) -> Pair:
    return Pair(measured("serve-p2", p2_wall, startup), measured("serve-p1", p1_wall, startup), p2_first)


def test_the_order_alternates_so_neither_parallelism_always_runs_first():
    assert pair_orders(3) == [("serve-p2", "serve-p1"), ("serve-p1", "serve-p2"), ("serve-p2", "serve-p1")]


def test_b_is_the_median_of_the_pairs_with_their_range_and_each_pair_in_the_table():
    pairs = [pair(586.8, 997.3, True), pair(693.4, 1001.4, False), pair(600.0, 1020.0, True)]
    text = report_pairs(pairs)
    # 1.6996, 1.4442, 1.7000: the median is the middle one, not the mean (1.61)
    assert "median of 3 pairs: 1.70× (range 1.44-1.70×" in text
    assert "| 2 | p1, p2 | 693.4 s | 1001.4 s | 1.44× | 20.0 s | 20.0 s | 1.46× |" in text
    assert "without start-up 1.72×" in text  # 977.3 / 566.8 = 1.7242, 981.4 / 673.4 = 1.4574, 1000 / 580 = 1.7241


def test_an_even_number_of_pairs_takes_the_mean_of_the_middle_two():
    text = report_pairs([pair(500.0, 800.0, True), pair(500.0, 900.0, False)])  # 1.60 and 1.80
    assert "median of 2 pairs: 1.70× (range 1.60-1.80×" in text


def test_no_pairs_is_refused_before_anything_runs(tmp_path):
    with pytest.raises(ValueError, match="at least 1"):
        run_pairs(10.0, 0, tmp_path)
