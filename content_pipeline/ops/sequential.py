"""An always-valid comparison of two samples' means: the mixture sequential probability ratio test (mSPRT,
Johari, Pekelis and Walsh, "Always valid inference", 2017) with a normal mixing distribution. Under equal means
its ratio ever reaching 1/alpha has chance at most alpha however often it is looked at (Ville's inequality),
so a daily check does not crown a false winner the way a daily t-test would."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from scipy.stats import norm

MIXTURE_SD = 0.5  # the mixing distribution's spread, in per-unit standard deviations: the effects it is tuned to
MAX_LOG_RATIO = 700.0  # exp() of more overflows a float


@dataclass(frozen=True)
class Sample:
    """A sample's size, mean and (unbiased) variance."""

    n: int
    mean: float
    var: float

    @classmethod
    def of(cls, values: list[float]) -> Sample:
        n = len(values)
        return cls(n, statistics.fmean(values) if n else 0.0, statistics.variance(values) if n > 1 else 0.0)


@dataclass(frozen=True)
class Evidence:
    """a's mean minus b's, its standard error, and the mixture likelihood ratio against "no difference"."""

    diff: float
    se: float
    ratio: float

    @property
    def p_value(self) -> float:
        """The always-valid p-value of this look: 1 / ratio, at most 1."""
        return min(1.0, 1.0 / self.ratio)

    def clears(self, alpha: float) -> bool:
        return self.ratio >= 1.0 / alpha


def compare(a: Sample, b: Sample) -> Evidence:
    """The evidence that a's and b's means differ: the ratio of the observed difference's density with the
    difference drawn from N(0, tau^2) (tau = MIXTURE_SD pooled standard deviations) to its density with none."""
    var = a.var / a.n + b.var / b.n
    pooled = ((a.n - 1) * a.var + (b.n - 1) * b.var) / max(1, a.n + b.n - 2)
    diff = a.mean - b.mean
    if var <= 0.0:  # every unit alike in both samples: no spread to weigh a difference against
        return Evidence(diff, 0.0, 1.0)
    tau2 = MIXTURE_SD**2 * pooled
    log_ratio = norm.logpdf(diff, scale=math.sqrt(var + tau2)) - norm.logpdf(diff, scale=math.sqrt(var))
    return Evidence(diff, math.sqrt(var), math.exp(min(float(log_ratio), MAX_LOG_RATIO)))
