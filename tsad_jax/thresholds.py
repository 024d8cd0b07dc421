"""Thresholds that turn anomaly scores into binary predictions (host-side numpy).

Scores follow the convention "higher = more anomalous", and a timestep is
predicted anomalous when its score is strictly greater than the threshold
(`predict`). Every method here is calibrated on calibration scores (training
or validation scores), never on test labels; the oracle best-F1 threshold lives
in `tsad_jax.metrics` and is the only one that looks at labels.

Methods, by registry name (see `compute`):
  "pot": Peaks-Over-Threshold (Siffer et al., 2017): a generalised Pareto tail
    fitted to the calibration scores above their `pot_level` quantile gives the
    score exceeded with probability `pot_q`. One scalar threshold.
  "spot": streaming POT (same paper, Algorithm 1): POT on the calibration
    scores, then the tail fit is updated along the test stream; one threshold
    per test step (the one in effect when that step's score arrives).
  "percentile": the score exceeded by `anomaly_ratio` percent of the
    calibration scores. One scalar threshold.
  "fixed": a hand-set value. One scalar threshold.

Options (a plain mapping or an `ml_collections.ConfigDict`; fields a method
does not use are ignored, a field set to None counts as missing):
  pot_q: risk q of "pot"/"spot", in (0, 1): the tail probability the threshold
    targets, roughly the false-alarm rate on normal data. Default 1e-3.
  pot_level: initial-threshold level of "pot"/"spot", in (0, 1): the empirical
    quantile of the calibration scores above which peaks are collected.
    Default 0.98. It must leave more than q of the scores above it.
  anomaly_ratio: "percentile" only, in PERCENT in [0, 100): 0.5 means 0.5 % of
    the calibration scores exceed the threshold (the meaning of the
    OmniAnomaly-port flag `--anomaly_ratio 0.5`). Required.
  fixed_value: "fixed" only, the threshold itself (finite). Required.

Reference: A. Siffer, P.-A. Fouque, A. Termier, C. Largouet, "Anomaly Detection
in Streams with Extreme Value Theory", KDD 2017. GPD maximum likelihood by
Grimshaw's reduction: S. D. Grimshaw, "Computing Maximum Likelihood Estimates
for the Generalized Pareto Distribution", Technometrics 35(2), 1993.
"""

from collections.abc import Callable
from collections.abc import Mapping
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


def _as_scores(scores: Any, name: str) -> np.ndarray:
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


def _check_open_unit(value: float, name: str) -> float:
  """Returns `value` as a float after checking it lies in the open interval (0, 1)."""
  value = float(value)
  if not 0.0 < value < 1.0:
    raise ValueError(f"{name} must be in the open interval (0, 1), got {value}.")
  return value


# ---------------------------------------------------------------------------
# GPD fit by Grimshaw's trick.
# ---------------------------------------------------------------------------


def _grimshaw_w(x: np.ndarray, y: np.ndarray) -> np.ndarray:
  """Grimshaw's function w(x) = u(x) v(x) - 1 at every x, vectorised.

  u(x) = mean(1 / (1 + x y)) and v(x) = 1 + mean(log(1 + x y)); the non-zero
  roots of w are the stationary points of the profile log-likelihood in
  x = gamma / sigma (Siffer et al., 2017, Sec. 3.3).

  Args:
    x: (K,) points, each with 1 + x y > 0 for every excess.
    y: (N,) excesses.

  Returns:
    (K,) values of w.
  """
  out = np.empty(x.shape, dtype=np.float64)
  rows = max(1, _CHUNK_ELEMENTS // y.size)
  for start in range(0, x.size, rows):
    s = np.multiply.outer(x[start:start + rows], y)
    s += 1.0
    log_sum = np.log(s).sum(axis=1)
    inv_sum = np.reciprocal(s, out=s).sum(axis=1)
    out[start:start + rows] = inv_sum * (y.size + log_sum) / (y.size * y.size) - 1.0
  return out


def _bracketed_roots(grid: np.ndarray, y: np.ndarray) -> np.ndarray:
  """Roots of w on a grid: sign changes between neighbours, refined all at once.

  Each bracket is refined by the Illinois variant of regula falsi, every
  bracket in one vectorised w evaluation per step. Neighbours on opposite
  sides of 0 (always a root of w) are never paired.

  Args:
    grid: (G,) increasing non-zero points.
    y: (N,) excesses.

  Returns:
    (K,) roots, possibly empty.
  """
  if grid.size < 2:
    return np.empty(0)
  w = _grimshaw_w(grid, y)
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


def _grimshaw_roots(y: np.ndarray) -> np.ndarray:
  """Non-zero roots of Grimshaw's equation for excesses normalised to mean 1.

  Roots are searched on (-1/Y_max, 0), where 1 + x Y > 0 for every excess,
  and on (0, 2 (mean - Y_min) / Y_min^2], Grimshaw's (1993) bound on the
  positive roots (Siffer et al., 2017, Sec. 3.3). Each side is scanned on a
  log grid (dense towards the pole -1/Y_max and towards 0) for sign changes,
  which are then refined. The positive side starts near 0, not at
  2 (mean - Y_min) / (mean Y_min) as in the authors' public code: with a small
  Y_min that lower end lies far above the actual root (e.g. x = 0.09 against
  2.5e3 for 4000 GPD(0.2) peaks), which would leave only the exponential fit.

  Args:
    y: (N,) positive excesses with mean 1.

  Returns:
    (K,) roots x = gamma / sigma (in units of 1 / mean excess).
  """
  y_max, y_min = float(y.max()), float(y.min())
  # Negative side, x = -f / y_max with f in (0, 1): f log-dense at both ends.
  near_zero = _log_grid(_X_NEAR_ZERO, 0.5)
  near_pole = 1.0 - _log_grid(_POLE_GAP, 0.5)[::-1][1:]
  negative = -np.concatenate([near_zero, near_pole])[::-1] / y_max
  # Positive side, up to Grimshaw's bound on the positive roots.
  # x_max = 2 (1 - y_min) / y_min^2, capped (y_min^2 may underflow).
  if _X_POSITIVE_CAP * y_min * y_min <= 2.0 * (1.0 - y_min):
    x_max = _X_POSITIVE_CAP
  else:
    x_max = 2.0 * (1.0 - y_min) / (y_min * y_min)
  positive = _log_grid(_X_NEAR_ZERO, x_max)
  return _bracketed_roots(np.concatenate([negative, positive]), y)


def fit_gpd(excesses: Any) -> GpdFit:
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
  scale = float(y.mean())
  y = y / scale  # Scale-free search; sigma and the log-likelihood are rescaled below.
  n = y.size

  roots = _grimshaw_roots(y)
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


def _tail_quantile(init_threshold: float, gamma: float, sigma: float, *, q: float,
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
  result, _, _ = _fit_tail(calib_scores, q=q, level=level)
  return result


def _fit_tail(calib_scores: Any, *, q: float, level: float) -> tuple[PotResult, np.ndarray, int]:
  """POT on validated calibration scores: (result, the peaks' excesses, number of scores)."""
  scores = _as_scores(calib_scores, "calib_scores")
  q = _check_open_unit(q, "q")
  level = _check_open_unit(level, "level")
  init_threshold, excesses = _initial_tail(scores, q=q, level=level)
  fit = fit_gpd(excesses)
  threshold = _tail_quantile(init_threshold, fit.gamma, fit.sigma, q=q, num_obs=scores.size,
                             num_peaks=excesses.size)
  result = PotResult(threshold, fit.gamma, fit.sigma, init_threshold, int(excesses.size))
  return result, excesses, int(scores.size)


# ---------------------------------------------------------------------------
# SPOT.
# ---------------------------------------------------------------------------


class _PeakBuffer:
  """Growable excess store shared by successive `SpotState`s.

  A state owns `data[:num_peaks]`. Appending from the newest state writes in
  place (amortised O(1)); appending from an older state, whose slots a newer
  state has already used, copies first, so every state stays valid.
  """

  __slots__ = ("data", "size")

  def __init__(self, values: np.ndarray, capacity: int):
    self.data = np.empty(max(capacity, values.size, 1), dtype=np.float64)
    self.data[:values.size] = values
    self.size = values.size

  def __repr__(self) -> str:
    return f"_PeakBuffer(size={self.size}, capacity={self.data.size})"


def _append_peak(buffer: _PeakBuffer, num_peaks: int, excess: float) -> _PeakBuffer:
  """Buffer holding the first `num_peaks` excesses of `buffer`, then `excess`."""
  if num_peaks != buffer.size or num_peaks == buffer.data.size:
    buffer = _PeakBuffer(buffer.data[:num_peaks], capacity=2 * num_peaks + 16)
  buffer.data[num_peaks] = excess
  buffer.size = num_peaks + 1
  return buffer


class SpotState(NamedTuple):
  """State of streaming POT between two observations.

  Attributes:
    q: risk.
    init_threshold: t, fixed after `spot_init`.
    threshold: z_q in effect for the next observation.
    gamma: current GPD shape.
    sigma: current GPD scale.
    num_obs: k, observations counted so far (calibration scores plus non-alarm
      stream values).
    num_peaks: N_t, peaks so far.
    peaks: excess store; only its first `num_peaks` entries belong to this state.
      Use `spot_peaks(state)` to read them.
  """

  q: float
  init_threshold: float
  threshold: float
  gamma: float
  sigma: float
  num_obs: int
  num_peaks: int
  peaks: _PeakBuffer


def spot_peaks(state: SpotState) -> np.ndarray:
  """Read-only copy of the excesses (peaks minus t) of a SPOT state."""
  return state.peaks.data[:state.num_peaks].copy()


def spot_init(calib_scores: Any, *, q: float = 1e-3, level: float = 0.98) -> SpotState:
  """Initial SPOT state: POT on the calibration scores (Siffer et al., Alg. 1, line 2).

  Args:
    calib_scores: (n,) finite calibration scores.
    q: risk, in (0, 1).
    level: initial-threshold quantile, in (0, 1).

  Returns:
    A `SpotState` with k = n.

  Raises:
    ValueError: as `pot`.
  """
  fit, excesses, num_obs = _fit_tail(calib_scores, q=q, level=level)
  return SpotState(q=float(q), init_threshold=fit.init_threshold, threshold=fit.threshold,
                   gamma=fit.gamma, sigma=fit.sigma, num_obs=num_obs, num_peaks=fit.num_peaks,
                   peaks=_PeakBuffer(excesses, capacity=2 * excesses.size + 16))


def spot_update(state: SpotState, score: float) -> tuple[SpotState, float, bool]:
  """Processes one stream value (Siffer et al., KDD 2017, Alg. 1, loop body).

  - score > z_q: alarm; the state is unchanged (alarms are neither peaks nor
    counted observations).
  - t < score <= z_q: a new peak; the GPD is refitted and z_q recomputed.
  - otherwise: a normal value; only k grows (z_q is, as in the paper, not
    recomputed until the next peak).

  Args:
    state: current state.
    score: the next finite score.

  Returns:
    (new state, threshold in effect for this score, whether it is an alarm).

  Raises:
    ValueError: non-finite score.
  """
  score = float(score)
  if not math.isfinite(score):
    raise ValueError(f"SPOT got a non-finite score ({score}); fix the scoring first.")
  threshold = state.threshold
  if score > threshold:
    return state, threshold, True
  if score <= state.init_threshold:
    return state._replace(num_obs=state.num_obs + 1), threshold, False
  num_peaks = state.num_peaks + 1
  num_obs = state.num_obs + 1
  peaks = _append_peak(state.peaks, state.num_peaks, score - state.init_threshold)
  fit = fit_gpd(peaks.data[:num_peaks])
  new_threshold = _tail_quantile(state.init_threshold, fit.gamma, fit.sigma, q=state.q,
                                 num_obs=num_obs, num_peaks=num_peaks)
  new_state = state._replace(threshold=new_threshold, gamma=fit.gamma, sigma=fit.sigma,
                             num_obs=num_obs, num_peaks=num_peaks, peaks=peaks)
  return new_state, threshold, False


def spot(calib_scores: Any, test_scores: Any, *, q: float = 1e-3,
         level: float = 0.98) -> tuple[np.ndarray, np.ndarray]:
  """Streaming POT over a whole test stream (Siffer et al., KDD 2017, Alg. 1).

  Same result as `spot_init` then `spot_update` on every test score in order;
  runs of normal values (<= t, which never changes) are skipped in bulk, so the
  Python loop and the refits only run on values above t.

  Note: as in the paper, alarms never join the peaks, so the refits see a tail
  cut at z_q and z_q drifts down on long stationary streams: with level 0.98,
  q = 1e-3, 20k calibration and 100k stream scores the alarm rate reaches
  ~1.8 q (about q while calibration peaks dominate).

  Args:
    calib_scores: (n,) finite calibration scores.
    test_scores: (T,) finite test scores, in time order.
    q: risk, in (0, 1).
    level: initial-threshold quantile, in (0, 1).

  Returns:
    (thresholds, alarms): (T,) float64 threshold in effect when each test score
    arrived, and (T,) uint8 alarms, equal to `predict(test_scores, thresholds)`.

  Raises:
    ValueError: as `pot`, or non-finite test scores.
  """
  state = spot_init(calib_scores, q=q, level=level)
  test = _as_scores(test_scores, "test_scores")
  thresholds = np.empty(test.size, dtype=np.float64)
  alarms = np.zeros(test.size, dtype=np.uint8)
  previous = 0
  for i in np.flatnonzero(test > state.init_threshold):
    thresholds[previous:i] = state.threshold
    state = state._replace(num_obs=state.num_obs + int(i - previous))
    state, thresholds[i], alarm = spot_update(state, test[i])
    alarms[i] = alarm
    previous = i + 1
  thresholds[previous:] = state.threshold
  return thresholds, alarms


# ---------------------------------------------------------------------------
# Simple thresholds.
# ---------------------------------------------------------------------------


def percentile(calib_scores: Any, *, anomaly_ratio: float) -> float:
  """Threshold exceeded by `anomaly_ratio` PERCENT of the calibration scores.

  The (100 - anomaly_ratio)-th percentile with linear interpolation, as the
  OmniAnomaly-port `--anomaly_ratio` flag means it (0.5 -> 0.5 %, not 50 %),
  but computed on calibration scores only. With n distinct scores exactly
  ceil(anomaly_ratio / 100 * (n - 1)) of them are strictly above it; ties can
  make that fewer.

  Args:
    calib_scores: (n,) finite calibration scores.
    anomaly_ratio: percent of scores to flag, in [0, 100).

  Returns:
    The threshold.

  Raises:
    ValueError: empty or non-finite scores, or anomaly_ratio outside [0, 100).
  """
  scores = _as_scores(calib_scores, "calib_scores")
  anomaly_ratio = float(anomaly_ratio)
  if not 0.0 <= anomaly_ratio < 100.0:
    raise ValueError(
        f"anomaly_ratio is a percentage in [0, 100) (0.5 means 0.5 %), got {anomaly_ratio}.")
  return float(np.percentile(scores, 100.0 - anomaly_ratio))


def fixed(value: float) -> float:
  """A hand-set threshold.

  Args:
    value: the threshold, finite.

  Returns:
    `value` as a float.

  Raises:
    ValueError: non-finite value.
  """
  value = float(value)
  if not math.isfinite(value):
    raise ValueError(f"A fixed threshold must be finite, got {value}.")
  return value


# ---------------------------------------------------------------------------
# Registry.
# ---------------------------------------------------------------------------

_MISSING = object()


def _option(options: Any, key: str, default: Any = _MISSING) -> Any:
  """Reads `key` from a mapping / ConfigDict; None counts as missing."""
  value = None
  if options is not None:
    try:
      value = options[key]
    except (KeyError, AttributeError, TypeError):
      value = getattr(options, key, None)
  if value is None:
    if default is _MISSING:
      raise ValueError(f"The threshold options need the field {key!r}.")
    return default
  return value


def _require(scores: Any, name: str, method: str) -> Any:
  if scores is None:
    raise ValueError(f"Threshold method {method!r} needs {name}.")
  return scores


def _compute_pot(calib_scores: Any, test_scores: Any, options: Any) -> np.ndarray:
  del test_scores  # Unused.
  result = pot(_require(calib_scores, "calib_scores", "pot"),
               q=_option(options, "pot_q", 1e-3), level=_option(options, "pot_level", 0.98))
  return np.asarray(result.threshold)


def _compute_spot(calib_scores: Any, test_scores: Any, options: Any) -> np.ndarray:
  thresholds, _ = spot(_require(calib_scores, "calib_scores", "spot"),
                       _require(test_scores, "test_scores", "spot"),
                       q=_option(options, "pot_q", 1e-3),
                       level=_option(options, "pot_level", 0.98))
  return thresholds


def _compute_percentile(calib_scores: Any, test_scores: Any, options: Any) -> np.ndarray:
  del test_scores  # Unused.
  return np.asarray(percentile(_require(calib_scores, "calib_scores", "percentile"),
                               anomaly_ratio=_option(options, "anomaly_ratio")))


def _compute_fixed(calib_scores: Any, test_scores: Any, options: Any) -> np.ndarray:
  del calib_scores, test_scores  # Unused.
  return np.asarray(fixed(_option(options, "fixed_value")))


ThresholdFn = Callable[[Any, Any, Any], np.ndarray]

# name -> fn(calib_scores, test_scores, options) returning a 0-d threshold or a
# (T,) per-test-step threshold array.
REGISTRY: Mapping[str, ThresholdFn] = {
    "pot": _compute_pot,
    "spot": _compute_spot,
    "percentile": _compute_percentile,
    "fixed": _compute_fixed,
}


def compute(name: str, *, calib_scores: Any = None, test_scores: Any = None,
            options: Any = None) -> np.ndarray:
  """Threshold by registry name, for configs.

  Args:
    name: one of "pot", "spot", "percentile", "fixed".
    calib_scores: (n,) calibration scores (train/validation); needed by all but
      "fixed".
    test_scores: (T,) test scores in time order; needed by "spot" only (which
      adapts along the stream without labels).
    options: mapping or ConfigDict with pot_q, pot_level, anomaly_ratio,
      fixed_value (see the module docstring).

  Returns:
    A 0-d float64 array (one threshold) or, for "spot", a (T,) array with the
    threshold in effect at each test step. Either goes to `predict`.

  Raises:
    ValueError: unknown name, missing option/scores, or any method's error.
  """
  try:
    fn = REGISTRY[name]
  except KeyError:
    raise ValueError(
        f"Unknown threshold method {name!r}; choose one of {sorted(REGISTRY)}.") from None
  return fn(calib_scores, test_scores, options)


def predict(test_scores: Any, threshold: Any) -> np.ndarray:
  """Binary predictions: 1 where the score is strictly above the threshold.

  Args:
    test_scores: (T,) finite scores.
    threshold: a scalar (or 0-d array), or a (T,) per-step array (SPOT).

  Returns:
    (T,) uint8 predictions.

  Raises:
    ValueError: non-finite scores/thresholds or mismatched shapes.
  """
  scores = _as_scores(test_scores, "test_scores")
  threshold = np.asarray(threshold, dtype=np.float64)
  if threshold.ndim not in (0, 1) or (threshold.ndim == 1 and threshold.shape != scores.shape):
    raise ValueError(
        f"threshold must be a scalar or have the scores' shape {scores.shape}, "
        f"got {threshold.shape}.")
  if not np.all(np.isfinite(threshold)):
    raise ValueError("threshold has NaN/inf values.")
  return (scores > threshold).astype(np.uint8)
