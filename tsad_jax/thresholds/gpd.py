"""Peaks-Over-Threshold: a generalised Pareto tail fitted to calibration scores.

POT (Siffer et al., KDD 2017, Sec. 3): a generalised Pareto distribution
(GPD) is fitted by maximum likelihood to the calibration scores above their
`level` quantile t, and the threshold is the GPD quantile z_q, the score
exceeded with probability q. The GPD fit uses Grimshaw's reduction of the
likelihood to one variable: S. D. Grimshaw, "Computing Maximum Likelihood
Estimates for the Generalized Pareto Distribution", Technometrics 35(2), 1993.
"""

import math
from typing import Any
from typing import NamedTuple

import numpy as np

# Fewest peaks (excesses over the initial threshold) a GPD is fitted to.
MIN_PEAKS = 10

# Root search of Grimshaw's equation, in units of the mean excess (see
# `_grimshaw_roots`). |x| below _X_NEAR_ZERO is not searched: there the
# equation is O(x^2) and lost in rounding, and such a root is the exponential
# candidate gamma = 0 for all practical purposes.
_X_NEAR_ZERO = 1e-4
_X_POSITIVE_CAP = 1e15
_GRID_PER_DECADE = 5
_POLE_GAP = 1e-12
_ROOT_RTOL = 1e-12
_MAX_REFINE_STEPS = 100
# Grid points x peaks evaluated per chunk of the grid (bounds peak memory).
_CHUNK_ELEMENTS = 1 << 22


class GpdFit(NamedTuple):
  """Generalised Pareto fit of excesses Y: P(Y > y) = (1 + gamma y / sigma)^(-1/gamma).

  Attributes:
    gamma: shape (extreme value index); 0 is the exponential tail, < 0 a
      bounded tail with endpoint -sigma / gamma.
    sigma: scale, > 0, in the units of the scores.
    log_likelihood: log-likelihood of the excesses at (gamma, sigma).
  """

  gamma: float
  sigma: float
  log_likelihood: float


class PotResult(NamedTuple):
  """Outcome of `pot`.

  Attributes:
    threshold: z_q, the score exceeded with probability q under the fitted tail.
    gamma: fitted GPD shape.
    sigma: fitted GPD scale.
    init_threshold: t, the empirical `level` quantile of the calibration scores.
    num_peaks: N_t, the number of calibration scores strictly above t.
  """

  threshold: float
  gamma: float
  sigma: float
  init_threshold: float
  num_peaks: int


def as_scores(scores: Any, name: str) -> np.ndarray:
  """Scores as a float64 array, checked to be 1-D, non-empty and finite."""
  array = np.asarray(scores, dtype=np.float64)
  if array.ndim != 1:
    raise ValueError(f"{name} must be a 1-D array of scores, got shape {array.shape}.")
  if array.size == 0:
    raise ValueError(f"{name} is empty; thresholds need at least one score.")
  bad = ~np.isfinite(array)
  if bad.any():
    first = int(np.flatnonzero(bad)[0])
    raise ValueError(
        f"{name} has {int(bad.sum())} NaN/inf value(s) (first at index {first}: "
        f"{array[first]}); fix the scoring before thresholding.")
  return array


def check_open_unit(value: float, name: str) -> float:
  """Returns `value` as a float after checking it lies in the open interval (0, 1)."""
  value = float(value)
  if not 0.0 < value < 1.0:
    raise ValueError(f"{name} must be in the open interval (0, 1), got {value}.")
  return value


# ---------------------------------------------------------------------------
# GPD fit by Grimshaw's trick.
# ---------------------------------------------------------------------------


def _grimshaw_sums(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(sum of 1 / (1 + x y), sum of log(1 + x y)) over the excesses y, at every x.

  Args:
    x: (K,) points, each with 1 + x y > 0 for every excess.
    y: (N,) excesses.
  """
  inverse, log = np.empty(x.shape, dtype=np.float64), np.empty(x.shape, dtype=np.float64)
  rows = max(1, _CHUNK_ELEMENTS // y.size)
  for start in range(0, x.size, rows):
    s = np.multiply.outer(x[start:start + rows], y)
    s += 1.0
    log[start:start + rows] = np.log(s).sum(axis=1)
    inverse[start:start + rows] = np.reciprocal(s, out=s).sum(axis=1)
  return inverse, log


def _w_from_sums(inverse: np.ndarray, log: np.ndarray, n: int) -> np.ndarray:
  return inverse * (n + log) / (n * n) - 1.0


def _grimshaw_w(x: np.ndarray, y: np.ndarray) -> np.ndarray:
  """Grimshaw's function w(x) = u(x) v(x) - 1 at every x, vectorised.

  u(x) = mean(1 / (1 + x y)) and v(x) = 1 + mean(log(1 + x y)); the non-zero
  roots of w are the stationary points of the profile log-likelihood in
  x = gamma / sigma (Siffer et al., 2017, Sec. 3.3). w is scale-free: w at
  x for excesses y equals w at x / c for c y.

  Args:
    x: (K,) points, each with 1 + x y > 0 for every excess.
    y: (N,) excesses.

  Returns:
    (K,) values of w.
  """
  return _w_from_sums(*_grimshaw_sums(x, y), y.size)


def _bracketed_roots(grid: np.ndarray, w: np.ndarray, y: np.ndarray) -> np.ndarray:
  """Roots of w on a grid: sign changes between neighbours, refined all at once.

  Each bracket is refined by the Illinois variant of regula falsi, every
  bracket in one vectorised w evaluation per step. Neighbours on opposite
  sides of 0 (always a root of w) are never paired.

  Args:
    grid: (G,) increasing non-zero points.
    w: (G,) w at the grid's points.
    y: (N,) excesses.

  Returns:
    (K,) roots, possibly empty.
  """
  if grid.size < 2:
    return np.empty(0)
  exact = grid[w == 0.0]
  change = np.flatnonzero((np.signbit(w[:-1]) != np.signbit(w[1:])) & (w[:-1] != 0.0)
                          & (w[1:] != 0.0) & ((grid[:-1] > 0.0) == (grid[1:] > 0.0)))
  a, b, w_a, w_b = grid[change], grid[change + 1], w[change], w[change + 1]
  for _ in range(_MAX_REFINE_STEPS):
    if np.all(np.abs(b - a) <= _ROOT_RTOL * np.abs(b)):
      break
    c = (a * w_b - b * w_a) / (w_b - w_a)
    c = np.where((c - a) * (c - b) < 0.0, c, 0.5 * (a + b))  # Stay inside the bracket.
    w_c = _grimshaw_w(c, y)
    flip = np.signbit(w_c) != np.signbit(w_b)
    a = np.where(flip, b, a)
    w_a = np.where(flip, w_b, 0.5 * w_a)  # Illinois: halve the stale end's value.
    b, w_b = c, w_c
    done = w_c == 0.0
    a = np.where(done, c, a)
  return np.concatenate([exact, b])


def _log_grid(start: float, stop: float) -> np.ndarray:
  """Log-spaced increasing grid from `start` to `stop` (both > 0), _GRID_PER_DECADE per decade."""
  if stop <= start:
    return np.empty(0)
  num = int(math.ceil(_GRID_PER_DECADE * math.log10(stop / start))) + 1
  return np.geomspace(start, stop, max(num, 2))


# Negative side of the search, x = -f / y_max with f in (0, 1) log-dense at both ends: -f here.
_NEGATIVE_SIDE = -np.concatenate([_log_grid(_X_NEAR_ZERO, 0.5),
                                  1.0 - _log_grid(_POLE_GAP, 0.5)[::-1][1:]])[::-1]


class GridSums(NamedTuple):
  """Grimshaw's sums over a set of excesses at every point of its root-search grid.

  The grid (`search_grid`) depends only on the largest and the smallest
  excess, so an excess between them adds one term to each sum (`add_excess`)
  instead of a pass over all of them: what keeps SPOT's refit at every new
  peak from growing with the number of peaks.

  Attributes:
    grid: (G,) increasing points x, in 1 / the excesses' units.
    inverse: (G,) sum of 1 / (1 + x y) over the excesses y.
    log: (G,) sum of log(1 + x y).
    largest, smallest: the largest and smallest excess the grid was built for.
  """

  grid: np.ndarray
  inverse: np.ndarray
  log: np.ndarray
  largest: float
  smallest: float


def search_grid(largest: float, smallest: float) -> np.ndarray:
  """Where the roots of Grimshaw's equation are looked for, for excesses in [smallest, largest].

  The negative side (-1/Y_max, 0), where 1 + x Y > 0 for every excess, is log
  dense towards the pole and towards 0. The positive side is a lattice of
  _GRID_PER_DECADE points a decade in units of 1 / Y_max, wide enough for
  every range `fit_gpd` searches with any mean of such excesses: from
  _X_NEAR_ZERO / mean >= _X_NEAR_ZERO / Y_max up to Grimshaw's bound
  2 (mean - Y_min) / Y_min^2 <= 2 Y_max / Y_min^2, or the cap
  _X_POSITIVE_CAP / mean <= _X_POSITIVE_CAP / Y_min.
  """
  ratio = largest / smallest
  top = min(2.0 * ratio * ratio, _X_POSITIVE_CAP * ratio, 1e300)
  lowest = math.floor(_GRID_PER_DECADE * math.log10(_X_NEAR_ZERO))
  highest = math.ceil(_GRID_PER_DECADE * math.log10(top))
  positive = 10.0 ** (np.arange(lowest, highest + 1) / _GRID_PER_DECADE)
  return np.concatenate([_NEGATIVE_SIDE, positive]) / largest


def grid_sums(excesses: np.ndarray) -> GridSums:
  """`GridSums` of (N,) positive excesses, from scratch."""
  largest, smallest = float(excesses.max()), float(excesses.min())
  grid = search_grid(largest, smallest)
  return GridSums(grid, *_grimshaw_sums(grid, excesses), largest, smallest)


def add_excess(sums: GridSums, excesses: np.ndarray) -> GridSums:
  """`GridSums` of `excesses`, whose last one is new and the others are those of `sums`.

  A new largest or smallest excess moves the grid: then the sums are rebuilt.
  """
  excess = float(excesses[-1])
  if not sums.smallest <= excess <= sums.largest:
    return grid_sums(excesses)
  terms = 1.0 + sums.grid * excess
  return sums._replace(inverse=sums.inverse + 1.0 / terms, log=sums.log + np.log(terms))


def _grimshaw_roots(y: np.ndarray, sums: GridSums, scale: float) -> np.ndarray:
  """Non-zero roots of Grimshaw's equation for excesses normalised to mean 1.

  Roots are searched on (-1/Y_max, 0), where 1 + x Y > 0 for every excess,
  and on [_X_NEAR_ZERO, 2 (1 - Y_min) / Y_min^2], Grimshaw's (1993) bound on
  the positive roots (Siffer et al., 2017, Sec. 3.3), capped. Sign changes of
  w between neighbouring points of the excesses' grid (`sums`, in the units
  of the excesses before normalisation by `scale`) and the two ends of the
  positive range are then refined. The positive side starts near 0, not at
  2 (mean - Y_min) / (mean Y_min) as in the authors' public code: with a small
  Y_min that lower end lies far above the actual root (e.g. x = 0.09 against
  2.5e3 for 4000 GPD(0.2) peaks), which would leave only the exponential fit.

  Args:
    y: (N,) positive excesses with mean 1.
    sums: `GridSums` of the same excesses times `scale`.
    scale: their mean.

  Returns:
    (K,) roots x = gamma / sigma (in units of 1 / mean excess).
  """
  y_min = float(y.min())
  # x_max = 2 (1 - y_min) / y_min^2, capped (y_min^2 may underflow).
  if _X_POSITIVE_CAP * y_min * y_min <= 2.0 * (1.0 - y_min):
    x_max = _X_POSITIVE_CAP
  else:
    x_max = 2.0 * (1.0 - y_min) / (y_min * y_min)
  grid = sums.grid * scale
  w = _w_from_sums(sums.inverse, sums.log, y.size)
  inside = (grid < 0.0) | ((grid > _X_NEAR_ZERO) & (grid < x_max))
  ends = np.array([_X_NEAR_ZERO, x_max] if x_max > _X_NEAR_ZERO else [])
  points = np.concatenate([grid[inside], ends])
  values = np.concatenate([w[inside], _grimshaw_w(ends, y)])
  order = np.argsort(points, kind="stable")
  return _bracketed_roots(points[order], values[order], y)


def fit_gpd(excesses: Any, sums: GridSums | None = None) -> GpdFit:
  """Maximum-likelihood generalised Pareto fit by Grimshaw's trick.

  The two-parameter likelihood is reduced to the one-variable equation
  u(x) v(x) = 1 in x = gamma / sigma; each root gives a candidate
  gamma = v(x) - 1, sigma = gamma / x, and the exponential case gamma = 0,
  sigma = mean(Y) is always a candidate. The candidate with the highest
  log-likelihood wins (Siffer et al., KDD 2017, Sec. 3.3; Grimshaw, 1993).

  Addition to the paper: the edge gamma = -1, sigma = max(Y) (uniform
  excesses, log-likelihood -N log max(Y)) is a candidate too. For tails at
  least as short as a uniform's the likelihood has no interior maximum on
  gamma >= -1, Grimshaw's equation has no useful root, and without this
  candidate the exponential fit would put the threshold beyond the support.

  Args:
    excesses: (N,) positive finite excesses over a threshold, N >= MIN_PEAKS.
    sums: their `GridSums` where the caller keeps them (SPOT); else computed here.

  Returns:
    The fitted `GpdFit`.

  Raises:
    ValueError: too few excesses, or non-finite / non-positive ones.
  """
  y = np.asarray(excesses, dtype=np.float64)
  if y.ndim != 1:
    raise ValueError(f"excesses must be 1-D, got shape {y.shape}.")
  if y.size < MIN_PEAKS:
    raise ValueError(
        f"Too few peaks to fit a generalised Pareto tail: {y.size} < {MIN_PEAKS}. "
        "Use more calibration scores or a lower level.")
  if not np.all(np.isfinite(y)) or np.any(y <= 0.0):
    raise ValueError("excesses must be finite and strictly positive.")
  sums = grid_sums(y) if sums is None else sums
  scale = float(y.mean())
  y = y / scale  # Scale-free search; sigma and the log-likelihood are rescaled below.
  n = y.size

  roots = _grimshaw_roots(y, sums, scale)
  best_gamma, best_sigma, best_ll = 0.0, 1.0, -float(n)  # Exponential: sigma = mean.
  y_max = float(y.max())
  boundary_ll = -n * math.log(y_max)  # gamma = -1, sigma = max(Y): uniform excesses.
  if boundary_ll > best_ll:
    best_gamma, best_sigma, best_ll = -1.0, y_max, boundary_ll
  if roots.size:
    logs = np.log1p(roots[:, None] * y[None, :])
    gammas = logs.mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
      sigmas = gammas / roots
      lls = -n * np.log(sigmas) - (1.0 + 1.0 / gammas) * logs.sum(axis=1)
    valid = (sigmas > 0.0) & (gammas != 0.0) & np.isfinite(lls)
    if valid.any():
      i = int(np.argmax(np.where(valid, lls, -np.inf)))
      if lls[i] > best_ll:
        best_gamma, best_sigma, best_ll = float(gammas[i]), float(sigmas[i]), float(lls[i])
  return GpdFit(best_gamma, best_sigma * scale, best_ll - n * math.log(scale))


def tail_quantile(init_threshold: float, gamma: float, sigma: float, *, q: float,
                   num_obs: int, num_peaks: int) -> float:
  """z_q = t + sigma / gamma ((q n / N_t)^(-gamma) - 1); t - sigma log(q n / N_t) at gamma = 0.

  Siffer et al. (2017), Eq. (1). Written with expm1 so gamma -> 0 is continuous.
  """
  log_ratio = math.log(q * num_obs / num_peaks)
  if gamma == 0.0:
    return init_threshold - sigma * log_ratio
  return init_threshold + sigma / gamma * math.expm1(-gamma * log_ratio)


def _initial_tail(scores: np.ndarray, *, q: float,
                  level: float) -> tuple[float, np.ndarray]:
  """Initial threshold t (empirical `level` quantile) and the excesses above it.

  Raises:
    ValueError: too few peaks, or q not below the fraction of peaks.
  """
  init_threshold = float(np.quantile(scores, level, method="inverted_cdf"))
  excesses = scores[scores > init_threshold] - init_threshold
  if excesses.size < MIN_PEAKS:
    raise ValueError(
        f"Too few peaks to fit a generalised Pareto tail: {excesses.size} of {scores.size} "
        f"calibration scores exceed the level={level} quantile {init_threshold:.6g} "
        f"(need >= {MIN_PEAKS}). Use more calibration scores, a lower level, or check "
        "for many tied scores.")
  if q * scores.size >= excesses.size:
    raise ValueError(
        f"q={q} is not below the fraction of peaks {excesses.size / scores.size:.3g} "
        f"above the level={level} quantile; lower q or lower level.")
  return init_threshold, excesses


def pot(calib_scores: Any, *, q: float = 1e-3, level: float = 0.98) -> PotResult:
  """Peaks-Over-Threshold threshold (Siffer et al., KDD 2017, Sec. 3).

  t is the empirical `level` quantile of the calibration scores; a generalised
  Pareto distribution is fitted to the peaks (excesses over t) by maximum
  likelihood (`fit_gpd`), and the threshold is
  z_q = t + sigma / gamma ((q n / N_t)^(-gamma) - 1), the score exceeded with
  probability q (n calibration scores, N_t peaks).

  Args:
    calib_scores: (n,) finite calibration scores (train/validation).
    q: risk, in (0, 1); must be below the peak fraction N_t / n.
    level: initial-threshold quantile, in (0, 1).

  Returns:
    A `PotResult`.

  Raises:
    ValueError: empty or non-finite scores, q or level outside (0, 1), too few
      peaks, or q not below the peak fraction.
  """
  result, _, _ = fit_tail(calib_scores, q=q, level=level)
  return result


def fit_tail(calib_scores: Any, *, q: float, level: float) -> tuple[PotResult, np.ndarray, int]:
  """POT on validated calibration scores: (result, the peaks' excesses, number of scores)."""
  scores = as_scores(calib_scores, "calib_scores")
  q = check_open_unit(q, "q")
  level = check_open_unit(level, "level")
  init_threshold, excesses = _initial_tail(scores, q=q, level=level)
  fit = fit_gpd(excesses)
  threshold = tail_quantile(init_threshold, fit.gamma, fit.sigma, q=q, num_obs=scores.size,
                             num_peaks=excesses.size)
  result = PotResult(threshold, fit.gamma, fit.sigma, init_threshold, int(excesses.size))
  return result, excesses, int(scores.size)


# ---------------------------------------------------------------------------
# SPOT.
