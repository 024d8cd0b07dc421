"""Streaming thresholds: SPOT and DSPOT (Siffer et al., KDD 2017, Algorithms 1 and 2).

Both start from POT on the calibration scores (`gpd.pot`) and follow the test
stream one score at a time with an `init`/`update` pair over a NamedTuple
state; the whole-stream functions (`spot`, `dspot`) give the same thresholds
and alarms as calling `update` on every score in order.
"""

import math
from typing import Any
from typing import NamedTuple

import numpy as np

from tsad_jax.thresholds.gpd import GridSums
from tsad_jax.thresholds.gpd import add_excess
from tsad_jax.thresholds.gpd import as_scores
from tsad_jax.thresholds.gpd import fit_gpd
from tsad_jax.thresholds.gpd import fit_tail
from tsad_jax.thresholds.gpd import grid_sums
from tsad_jax.thresholds.gpd import tail_quantile


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
    sums: the peaks' `gpd.GridSums`, so a new peak's refit adds one term per grid
      point instead of a pass over every peak (None: rebuilt at the next peak).
  """

  q: float
  init_threshold: float
  threshold: float
  gamma: float
  sigma: float
  num_obs: int
  num_peaks: int
  peaks: _PeakBuffer
  sums: GridSums | None = None


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
  fit, excesses, num_obs = fit_tail(calib_scores, q=q, level=level)
  return SpotState(q=float(q), init_threshold=fit.init_threshold, threshold=fit.threshold,
                   gamma=fit.gamma, sigma=fit.sigma, num_obs=num_obs, num_peaks=fit.num_peaks,
                   peaks=_PeakBuffer(excesses, capacity=2 * excesses.size + 16),
                   sums=grid_sums(excesses))


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
  excesses = peaks.data[:num_peaks]
  sums = grid_sums(excesses) if state.sums is None else add_excess(state.sums, excesses)
  fit = fit_gpd(excesses, sums)
  new_threshold = tail_quantile(state.init_threshold, fit.gamma, fit.sigma, q=state.q,
                                 num_obs=num_obs, num_peaks=num_peaks)
  new_state = state._replace(threshold=new_threshold, gamma=fit.gamma, sigma=fit.sigma,
                             num_obs=num_obs, num_peaks=num_peaks, peaks=peaks, sums=sums)
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
  _, thresholds, alarms = spot_follow(spot_init(calib_scores, q=q, level=level), test_scores)
  return thresholds, alarms


def spot_follow(state: SpotState, scores: Any) -> tuple[SpotState, np.ndarray, np.ndarray]:
  """`spot_update` on each of `scores` in order: (state after them, (T,) thresholds, (T,)
  uint8 alarms). Runs of values <= t (which never changes) are skipped in bulk."""
  test = as_scores(scores, "test_scores")
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
  return state._replace(num_obs=state.num_obs + int(test.size - previous)), thresholds, alarms


# ---------------------------------------------------------------------------
# Simple thresholds.


class DspotState(NamedTuple):
  """State of drift-aware SPOT between two observations.

  Attributes:
    spot: SPOT state of the residuals x - local mean.
    window: (depth,) the last `depth` scores that entered the local mean, oldest first.
    relearn: after this many alarms in a row, the alarmed scores enter the window
      too (0: never, Siffer et al.'s DSPOT).
    alarm_run: how many alarms in a row end at the last score.
  """

  spot: SpotState
  window: np.ndarray
  relearn: int = 0
  alarm_run: int = 0


def _local_means(scores: np.ndarray, depth: int) -> np.ndarray:
  """mean(scores[i - depth:i]) for i = depth .. n - 1."""
  sums = np.cumsum(np.concatenate([[0.0], scores]))
  return (sums[depth:-1] - sums[:-depth - 1]) / depth


def dspot_init(calib_scores: Any, *, q: float = 1e-3, level: float = 0.98,
               depth: int = 10, relearn: int = 0) -> DspotState:
  """Initial DSPOT state (Siffer et al., KDD 2017, Alg. 2, lines 1-5).

  Each calibration score after the first `depth` becomes a residual, the
  score minus the mean of the `depth` scores before it; POT runs on those
  residuals.

  Siffer et al.'s DSPOT keeps alarms out of the local mean, so after a lasting
  shift of the score's level it alarms for as long as the shift lasts. With
  `relearn` > 0 the scores after `relearn` alarms in a row enter the local
  mean as well: the new level becomes the normal one, and the shift ends as
  one alarm event of about `relearn` + `depth` / 2 scores.

  Raises:
    ValueError: depth not a positive integer, relearn negative or not an
      integer, fewer than depth + 1 scores, or as `pot`.
  """
  scores = as_scores(calib_scores, "calib_scores")
  if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
    raise ValueError(f"DSPOT depth must be a positive integer, got {depth!r}.")
  if isinstance(relearn, bool) or not isinstance(relearn, int) or relearn < 0:
    raise ValueError("DSPOT relearn (config.threshold.dspot_relearn) must be a non-negative "
                     f"integer (0: never), got {relearn!r}.")
  if scores.size <= depth:
    raise ValueError(f"DSPOT with depth {depth} needs more than {depth} calibration scores, "
                     f"got {scores.size}.")
  residuals = scores[depth:] - _local_means(scores, depth)
  return DspotState(spot_init(residuals, q=q, level=level), scores[-depth:].copy(), relearn)


def dspot_update(state: DspotState, score: float) -> tuple[DspotState, float, bool]:
  """Processes one stream value (Alg. 2, loop body).

  The residual (score - mean of the window) goes through `spot_update`; a
  score that is not an alarm, or comes after `state.relearn` alarms in a row,
  enters the window, pushing out its oldest.

  Returns:
    (new state, threshold in effect for this score in the score's own units, alarm).
  """
  level = float(state.window.sum()) / state.window.size  # np.mean's figure, without its cost
  spot_state, threshold, alarm = spot_update(state.spot, float(score) - level)
  alarm_run = state.alarm_run + 1 if alarm else 0
  learns = not alarm or 0 < state.relearn < alarm_run
  window = np.concatenate((state.window[1:], (float(score),))) if learns else state.window
  return DspotState(spot_state, window, state.relearn, alarm_run), threshold + level, alarm


def dspot(calib_scores: Any, test_scores: Any, *, q: float = 1e-3, level: float = 0.98,
          depth: int = 10, relearn: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """Drift-aware streaming POT over a whole test stream (Siffer et al., KDD 2017, Alg. 2).

  The threshold follows the local mean of the last `depth` non-alarm scores,
  so a slow drift of the score's level does not by itself raise alarms
  (`relearn`: see `dspot_init`).

  Returns:
    (thresholds, alarms): (T,) float64 threshold in effect when each test score
    arrived, and (T,) uint8 alarms.
  """
  state = dspot_init(calib_scores, q=q, level=level, depth=depth, relearn=relearn)
  _, thresholds, alarms = dspot_follow(state, test_scores)
  return thresholds, alarms


def dspot_follow(state: DspotState, scores: Any) -> tuple[DspotState, np.ndarray, np.ndarray]:
  """`dspot_update` on each of `scores` in order: (state after them, (T,) thresholds, (T,)
  uint8 alarms)."""
  test = as_scores(scores, "test_scores")
  thresholds = np.empty(test.size, dtype=np.float64)
  alarms = np.zeros(test.size, dtype=np.uint8)
  for i, score in enumerate(test):
    state, thresholds[i], alarms[i] = dspot_update(state, score)
  return state, thresholds, alarms
