"""The mixture sequential probability ratio: its closed form (Johari et al. 2017, eq. 11), no evidence for
equal means, growing evidence as a real difference is seen on more units, and no spread meaning no evidence."""

from __future__ import annotations

import math

import pytest

from content_pipeline.ops.sequential import MIXTURE_SD, Sample, compare


def closed_form(diff: float, var: float, tau2: float) -> float:
    return math.sqrt(var / (var + tau2)) * math.exp(diff**2 * tau2 / (2 * var * (var + tau2)))


def test_the_ratio_is_the_papers_closed_form() -> None:
    a, b = Sample(40, 0.05, 0.0004), Sample(50, 0.04, 0.0003)
    var = 0.0004 / 40 + 0.0003 / 50
    pooled = (39 * 0.0004 + 49 * 0.0003) / 88
    found = compare(a, b)
    assert found.diff == pytest.approx(0.01) and found.se == pytest.approx(math.sqrt(var))
    assert found.ratio == pytest.approx(closed_form(0.01, var, MIXTURE_SD**2 * pooled))


def test_equal_means_are_no_evidence_and_a_real_difference_grows_with_the_units() -> None:
    same = compare(Sample.of([0.02, 0.03, 0.04] * 10), Sample.of([0.04, 0.03, 0.02] * 10))
    assert same.ratio < 1 and same.p_value == 1.0 and not same.clears(0.05)
    ratios = [compare(Sample(n, 0.036, 1e-4), Sample(n, 0.030, 1e-4)).ratio for n in (10, 40, 160)]
    assert ratios[0] < 20 < ratios[2] and ratios == sorted(ratios)
    assert compare(Sample(160, 0.036, 1e-4), Sample(160, 0.030, 1e-4)).clears(0.05)


def test_no_spread_in_either_sample_is_no_evidence() -> None:
    found = compare(Sample.of([0.5] * 30), Sample.of([0.2] * 30))
    assert found.ratio == 1.0 and found.p_value == 1.0
