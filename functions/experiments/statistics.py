"""The statistics of an experiment report, from per-arm counters alone.

Pure: no AWS, no numpy or scipy (the read API's bundle stays small); the
special functions are the standard library's (`statistics.NormalDist`) plus a
regularized incomplete gamma for the chi-square test, checked against scipy in
the tests.

Each arm is summarised by sufficient statistics the stream keeps exactly:
exposures n, and for each metric the sum and the sum of squares of its
per-person values (a conversion is a 0/1 value per person). From them:

- the difference treated - control of the means, with a fixed-horizon interval
  (normal approximation, unequal variances) — valid once, at a sample size
  declared before the test;
- and an always-valid confidence sequence for the same difference (the normal
  mixture boundary of Howard, Ramdas, McAuliffe and Sekhon, "Time-uniform,
  nonparametric, nonasymptotic confidence sequences", 2021, eq. 14, in the
  asymptotic form GrowthBook and Eppo use): it may be looked at after every
  event, and the chance it ever excludes the true difference stays below alpha.
  Reports lead with it (docs/experiments.md);
- the relative lift (difference over the control mean, delta method);
- CUPED (Deng, Xu, Kohavi and Walker, 2013): with a covariate x measured before
  exposure, the outcome y is replaced by y - theta * (x - mean x), theta =
  cov(x, y) / var(x) pooled within the two arms compared; the adjusted means
  differ by the same amount in expectation (x cannot depend on the arm) with
  variance shrunk by about corr(x, y)^2. The adjusted arms' moments come from
  the sums of x, x^2 and x*y the stream keeps, and go through the same fixed
  interval and confidence sequence;
- a sample-ratio-mismatch test: chi-square of the exposures against the
  configured weights, flagged below p = 0.001.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

SRM_THRESHOLD = 0.001  # p-value below which the split is flagged (as GrowthBook, Statsig)
MIN_EXPOSURES = 100  # per arm, before an interval is shown at all
# The sample size at which the confidence sequence is tightest; wider before and after,
# valid throughout. A typical experiment's total exposures (GrowthBook's default 5,000).
TUNING_SAMPLE_SIZE = 5_000

_STANDARD_NORMAL = NormalDist()


@dataclass(frozen=True)
class Moments:
    """One arm's counters for one metric: n people, sum and sum of squares of their values."""

    n: int
    total: float
    squares: float

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        """The unbiased per-person variance (0 with fewer than two people)."""
        if self.n < 2:
            return 0.0
        return max(self.squares - self.total * self.total / self.n, 0.0) / (self.n - 1)


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float

    def excludes(self, value: float) -> bool:
        return not self.low <= value <= self.high


@dataclass(frozen=True)
class Comparison:
    """Treated - control for one metric."""

    difference: Interval  # always-valid confidence sequence
    fixed_horizon: Interval  # a single look at a declared sample size
    relative: Interval | None  # (treated - control) / control, sequential; None if control is 0
    enough_data: bool


def z_value(alpha: float) -> float:
    return _STANDARD_NORMAL.inv_cdf(1 - alpha / 2)


def fixed_horizon_halfwidth(variance: float, alpha: float) -> float:
    """`variance`: of the difference estimate (var_t / n_t + var_c / n_c)."""
    return z_value(alpha) * math.sqrt(variance)


def sequential_halfwidth(
    variance: float, n: int, alpha: float, tuning: int = TUNING_SAMPLE_SIZE
) -> float:
    """Half-width of the normal-mixture confidence sequence after `n` people in all.

    `variance` is the difference estimate's; times n it is the per-person
    variance the boundary is stated in. rho is chosen so the boundary is tightest
    at `tuning` people (Howard et al. 2021, section 3.5)."""
    if n <= 0:
        return math.inf
    rho_squared = (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning
    per_person = variance * n
    scale = n * rho_squared + 1
    radius = (2 * scale / (n * n * rho_squared)) * math.log(math.sqrt(scale) / alpha)
    return math.sqrt(per_person * radius)


def compare(
    treated: Moments, control: Moments, alpha: float = 0.05, tuning: int = TUNING_SAMPLE_SIZE
) -> Comparison:
    difference = treated.mean - control.mean
    variance = _variance_of_mean(treated) + _variance_of_mean(control)
    n = treated.n + control.n
    sequential = sequential_halfwidth(variance, n, alpha, tuning)
    fixed = fixed_horizon_halfwidth(variance, alpha)
    relative = None
    if control.mean != 0:
        # Delta method for (mean_t / mean_c) - 1 with independent arms.
        ratio = treated.mean / control.mean
        relative_variance = (
            _variance_of_mean(treated) + ratio * ratio * _variance_of_mean(control)
        ) / (control.mean * control.mean)
        half = sequential_halfwidth(relative_variance, n, alpha, tuning)
        relative = Interval(ratio - 1, ratio - 1 - half, ratio - 1 + half)
    return Comparison(
        difference=Interval(difference, difference - sequential, difference + sequential),
        fixed_horizon=Interval(difference, difference - fixed, difference + fixed),
        relative=relative,
        enough_data=min(treated.n, control.n) >= MIN_EXPOSURES,
    )


def _variance_of_mean(arm: Moments) -> float:
    return arm.variance / arm.n if arm.n else math.inf


# --- CUPED --------------------------------------------------------------------------


@dataclass(frozen=True)
class Covariate:
    """One arm's covariate counters for one metric: the sums of x, x^2 and x*y over
    its people (x measured at exposure, y the metric's per-person value)."""

    total: float
    squares: float
    cross: float


@dataclass(frozen=True)
class Cuped:
    comparison: Comparison  # of the adjusted outcomes: the same intervals, narrower
    theta: float
    variance_reduction: float  # 1 - var(adjusted difference) / var(unadjusted difference)


def cuped(
    treated: Moments,
    treated_x: Covariate,
    control: Moments,
    control_x: Covariate,
    alpha: float = 0.05,
    tuning: int = TUNING_SAMPLE_SIZE,
) -> Cuped:
    """Treated - control of y - theta * (x - mean x), theta pooled within the two arms.

    A covariate without variance (everyone's x the same, or no x at all) gives
    theta = 0: the unadjusted comparison, and no reduction."""
    sxx = sxy = 0.0
    for arm, x in ((treated, treated_x), (control, control_x)):
        if arm.n:
            sxx += x.squares - x.total * x.total / arm.n
            sxy += x.cross - x.total * arm.total / arm.n
    scale = treated_x.squares + control_x.squares
    theta = sxy / sxx if sxx > 1e-9 * scale and sxx > 0 else 0.0
    n = treated.n + control.n
    x_mean = (treated_x.total + control_x.total) / n if n else 0.0
    adjusted_t = _adjusted(treated, treated_x, theta, x_mean)
    adjusted_c = _adjusted(control, control_x, theta, x_mean)
    raw = _variance_of_mean(treated) + _variance_of_mean(control)
    adjusted = _variance_of_mean(adjusted_t) + _variance_of_mean(adjusted_c)
    reduction = 1 - adjusted / raw if 0 < raw < math.inf else 0.0
    return Cuped(compare(adjusted_t, adjusted_c, alpha, tuning), theta, reduction)


def _adjusted(arm: Moments, x: Covariate, theta: float, x_mean: float) -> Moments:
    """The moments of z = y - theta * (x - x_mean) over the arm's people, from sums:
    sum z = sum y - theta * (sum x - n x_mean), and the variance of z is var y -
    2 theta cov(x, y) + theta^2 var x (each from the arm's centred sums)."""
    if arm.n == 0 or theta == 0.0:
        return arm
    n = arm.n
    total = arm.total - theta * (x.total - n * x_mean)
    var_y = arm.squares - arm.total * arm.total / n
    cov = x.cross - x.total * arm.total / n
    var_x = x.squares - x.total * x.total / n
    centred = max(var_y - 2 * theta * cov + theta * theta * var_x, 0.0)
    return Moments(n, total, centred + total * total / n)


# --- sample ratio mismatch --------------------------------------------------------


@dataclass(frozen=True)
class SampleRatio:
    p_value: float
    flag: bool


def sample_ratio_mismatch(exposures: Sequence[int], weights: Sequence[float]) -> SampleRatio:
    """Pearson's chi-square of the exposures against the configured weights."""
    total = sum(exposures)
    weight_sum = sum(weights)
    if total == 0 or len(exposures) < 2:
        return SampleRatio(1.0, False)
    statistic = 0.0
    for seen, weight in zip(exposures, weights, strict=True):
        expected = total * weight / weight_sum
        if expected > 0:
            statistic += (seen - expected) ** 2 / expected
    p = chi_square_sf(statistic, len(exposures) - 1)
    return SampleRatio(p, p < SRM_THRESHOLD)


def chi_square_sf(x: float, degrees: int) -> float:
    """P(X >= x) for a chi-square variable with `degrees` degrees of freedom."""
    half = x / 2
    if half <= 0:  # also a subnormal x, whose half is 0
        return 1.0
    return _upper_regularized_gamma(degrees / 2, half)


def _upper_regularized_gamma(s: float, x: float) -> float:
    """Q(s, x): the series below s + 1, Lentz's continued fraction above (Numerical
    Recipes, 6.2), to double precision."""
    log_prefix = s * math.log(x) - x - math.lgamma(s)
    if x < s + 1:
        term = total = 1 / s
        a = s
        for _ in range(500):
            a += 1
            term *= x / a
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1 - total * math.exp(log_prefix))
    tiny = 1e-300
    b = x + 1 - s
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 500):
        an = -i * (i - s)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        step = d * c
        h *= step
        if abs(step - 1) < 1e-15:
            break
    return min(1.0, math.exp(log_prefix) * h)
