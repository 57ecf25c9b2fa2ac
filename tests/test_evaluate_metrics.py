"""The evaluation report's metrics on hand-made inputs, each checked against a value worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recengine.evaluate.health import changed_share, distinct_per_window
from recengine.evaluate.hearing import drop_copies, exact_neighbours, hubness, label_precision
from recengine.evaluate.history import default_cutoff
from recengine.evaluate.replay import expected_random, hit_rate, ndcg, score_ranking
from recengine.evaluate.svg import Series, bars, scatter


def test_exact_neighbours_on_a_line():
    # points at 0, 1, 3, 7 on a line (euclidean): nearest others worked out by hand
    x = np.array([[0.0], [1.0], [3.0], [7.0]])
    nn = exact_neighbours(x, "euclidean", 2)
    assert nn.tolist() == [[1, 2], [0, 2], [1, 0], [2, 1]]
    # ties go to the lower row: 1 is at distance 1 from both 0 and 2
    assert exact_neighbours(np.array([[0.0], [1.0], [2.0]]), "euclidean", 1)[1].tolist() == [0]
    assert exact_neighbours(np.array([[0.0], [1.0], [2.0]]), "euclidean", 2)[1].tolist() == [0, 2]


def test_exact_neighbours_angular_ignores_length():
    x = np.array([[1.0, 0.0], [10.0, 0.5], [0.0, 1.0]])
    assert exact_neighbours(x, "angular", 1)[:, 0].tolist() == [1, 0, 1]


def test_label_precision_and_chance_by_hand():
    # 7 tracks: album 0 has 3 tracks (rows 0-2), album 1 has 3 (rows 3-5), row 6 is untagged
    labels = np.array([0, 0, 0, 1, 1, 1, -1])
    neighbours = np.array([
        [1, 3], [2, 0], [6, 3],  # row 0: 1 of 2 same; row 1: 2 of 2; row 2: 0 of 2
        [4, 5], [0, 4], [6, -1],  # row 3: 2 of 2; row 4: 1 of 2 (first is a miss); row 5: 0 of 2 (-1: a miss)
        [0, 1],  # row 6 is untagged: not a query
    ])
    p = label_precision(neighbours, labels)
    assert p.queries == 6 and p.groups == 2
    assert p.p_at_k == pytest.approx((1 + 2 + 0 + 2 + 1 + 0) / 12)
    assert p.one_nn == pytest.approx(3 / 6)  # rows 0, 1 and 3 have a same-album nearest neighbour
    assert p.chance == pytest.approx(2 / 6)  # (3 - 1) / (7 - 1) for every query
    # groups smaller than three tracks are not measured
    assert label_precision(neighbours[:2], np.array([0, 0, 1, 1, 2, 2, 3])) is None


def test_copies_are_dropped_and_counted():
    neighbours = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])
    sigs = ["a", "a", "b", "c"]  # rows 0 and 1 are the same audio
    clean, share = drop_copies(neighbours, sigs, 2)
    assert clean.tolist() == [[2, 3], [2, 3], [0, 1], [0, 1]]
    assert share == pytest.approx(2 / 4)


def test_hubness_by_hand():
    # 5 tracks, 1 neighbour each: track 0 is everybody's neighbour, 2 3 4 nobody's
    neighbours = np.array([[1], [0], [0], [0], [0]])
    h = hubness(neighbours, [10, 11, 12, 13, 14], k=1)
    assert h.orphans == pytest.approx(3 / 5)
    assert h.hubs == pytest.approx(1 / 5)  # N_1(0) = 4 > 2 * 1
    counts = np.array([4, 1, 0, 0, 0])
    expected_skew = ((counts - 1) ** 3).mean() / counts.std() ** 3
    assert h.skew == pytest.approx(expected_skew)
    assert h.top == [(10, 4), (11, 1)]


def test_hit_rate_and_ndcg_by_hand():
    ranked = [5, 1, 7, 2, 9]
    truth = {1, 2, 3}
    assert hit_rate(ranked, truth, 5) == pytest.approx(2 / 3)
    assert hit_rate(ranked, truth, 2) == pytest.approx(1 / 2)  # out of min(k, |truth|) = 2
    dcg = 1 / math.log2(3) + 1 / math.log2(5)  # hits at ranks 2 and 4
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg(ranked, truth, 5) == pytest.approx(dcg / ideal)
    assert ndcg(ranked, set(), 5) == 0.0
    s = score_ranking(ranked, truth, {9, 5, 4}, candidates=40, k=5)
    assert (s.truth, s.candidates, s.negatives) == (3, 40, 2.0)


def test_expected_random_by_hand():
    s = expected_random(candidates=27, truth=2, negatives=3, k=10)
    assert s.hit_rate == pytest.approx(10 * (2 / 27) / 2)
    ideal = 1 + 1 / math.log2(3)
    assert s.ndcg == pytest.approx(sum((2 / 27) / math.log2(i + 2) for i in range(10)) / ideal)
    assert s.negatives == pytest.approx(10 * 3 / 27)
    # fewer candidates than K: every one is in the list
    assert expected_random(candidates=4, truth=1, negatives=0, k=10).hit_rate == pytest.approx(1.0)


def test_default_cutoff_keeps_a_fifth_and_at_least_a_day():
    day = 86400.0
    times = [i * day for i in range(10)]  # ten days, one event a day
    assert default_cutoff(times) == 8 * day  # events 8 and 9 (the newest 20 %) are the truth
    hourly = [i * 3600.0 for i in range(10)]  # all within 9 hours: the truth must still span a day
    assert default_cutoff(hourly) == hourly[-1] - day


def test_variety_and_churn_by_hand():
    keys = list("aabcdeefgh") + ["a", "a"]  # 12 tracks, windows of 10: three of them
    assert distinct_per_window(keys) == pytest.approx((8 + 8 + 8) / 3)
    assert distinct_per_window(["x", "y", "x"]) == 2.0  # shorter than a window: the whole list
    assert distinct_per_window([]) == 0.0
    assert changed_share([1, 2, 3, 4], [2, 4, 9]) == pytest.approx(2 / 4)


def test_charts_are_plain_svg_with_escaped_text():
    chart = bars("P@10 <fused>", ["a&b", "c"], [Series("P", [0.5, None], "#000")],
                 marks=Series("chance", [0.1, 0.2], "#f00"), scale=1.0)
    assert chart.startswith("<svg") and chart.endswith("</svg>")
    assert "a&amp;b" in chart and "&lt;fused&gt;" in chart and "<script" not in chart
    assert chart.count("<rect") == 1 + 2  # one bar (None draws none) plus two legend swatches
    dots = scatter("map", [0.0, 1.0, 2.0], [0.0, 1.0, 0.5], ["x", "x", ""])
    assert dots.count("<circle") == 3 + 2  # three points, legend: x and other
