"""Thresholds that turn anomaly scores into alarms (host-side numpy).

Scores follow the convention "higher = more anomalous", and a timestep is an
alarm when its score is strictly greater than the threshold (`predict`).
Every method is calibrated on calibration scores (by default the held-out
validation tail of the training series), never on test labels; the streaming
ones also follow the test scores as they arrive, each threshold depending only
on scores before it. The oracle best-F1 threshold lives in `tsad_jax.metrics`
and is the only one that looks at labels.

Methods, by registry name (see `compute`):
  "pot": Peaks-Over-Threshold (Siffer et al., KDD 2017): the quantile z_q of a
    generalised Pareto tail fitted to the calibration scores above their
    `pot_level` quantile, exceeded with probability `pot_q` (`gpd.pot`). One
    scalar threshold.
  "spot": streaming POT (same paper, Alg. 1): POT on the calibration scores,
    then the tail fit follows the test stream; one threshold per test step.
  "dspot": drift-aware SPOT (Alg. 2): SPOT on each score minus the mean of the
    `dspot_depth` non-alarm scores before it; one threshold per test step.
  "percentile": the score exceeded by `anomaly_ratio` percent of the
    calibration scores. One scalar threshold.
  "tail_p": -log(`tail_probability`): for scores that are sums of -log tail
    probabilities (`config.eval.aggregation = "tail_p"`), an alarm where the
    product of the features' tail probabilities falls below that level. One
    scalar threshold, from no calibration scores.
  "fixed": a hand-set value. One scalar threshold.

Options (a plain mapping or an `ml_collections.ConfigDict`; fields a method
does not use are ignored, a field set to None counts as missing):
  pot_q: risk q of "pot"/"spot"/"dspot", in (0, 1): the tail probability the
    threshold targets, roughly the false-alarm rate on normal data. Default 1e-3.
  pot_level: initial-threshold level of "pot"/"spot"/"dspot", in (0, 1): the
    empirical quantile of the calibration scores above which peaks are
    collected. Default 0.98. It must leave more than q of the scores above it.
  dspot_depth: "dspot" only, the number of past scores the local mean reads.
    Default 10.
  dspot_relearn: "dspot" only: after this many alarms in a row the alarmed
    scores enter the local mean, so a lasting level shift ends as one alarm
    event (`streaming.dspot_init`). Default 0: never, as in Siffer et al.
  anomaly_ratio: "percentile" only, in PERCENT in [0, 100): 0.5 means 0.5 % of
    the calibration scores exceed the threshold (the meaning of the
    OmniAnomaly-port flag `--anomaly_ratio 0.5`). Required.
  tail_probability: "tail_p" only, in (0, 1). Required.
  fixed_value: "fixed" only, the threshold itself (finite). Required.
"""

from collections.abc import Callable
from collections.abc import Mapping
import math
from typing import Any
from typing import NamedTuple

import numpy as np

from tsad_jax.thresholds.gpd import MIN_PEAKS
from tsad_jax.thresholds.gpd import GpdFit  # noqa: F401
from tsad_jax.thresholds.gpd import PotResult  # noqa: F401
from tsad_jax.thresholds.gpd import as_scores
from tsad_jax.thresholds.gpd import check_open_unit
from tsad_jax.thresholds.gpd import fit_gpd  # noqa: F401
from tsad_jax.thresholds.gpd import pot
from tsad_jax.thresholds.streaming import DspotState  # noqa: F401
from tsad_jax.thresholds.streaming import SpotState  # noqa: F401
from tsad_jax.thresholds.streaming import dspot
from tsad_jax.thresholds.streaming import dspot_follow
from tsad_jax.thresholds.streaming import dspot_init
from tsad_jax.thresholds.streaming import dspot_update  # noqa: F401
from tsad_jax.thresholds.streaming import spot
from tsad_jax.thresholds.streaming import spot_follow
from tsad_jax.thresholds.streaming import spot_init
from tsad_jax.thresholds.streaming import spot_peaks  # noqa: F401
from tsad_jax.thresholds.streaming import spot_update  # noqa: F401


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
  scores = as_scores(calib_scores, "calib_scores")
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


def tail_p(tail_probability: float) -> float:
  """-log(tail_probability): the threshold on a sum of -log tail probabilities.

  An alarm at this threshold is a timestep whose features' tail
  probabilities (each under that feature's calibration distribution,
  `feature_scaling.tail_log_probabilities`) multiply to less than
  `tail_probability`.

  Raises:
    ValueError: tail_probability outside (0, 1).
  """
  return -math.log(check_open_unit(tail_probability, "tail_probability"))


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


def _compute_dspot(calib_scores: Any, test_scores: Any, options: Any) -> np.ndarray:
  thresholds, _ = dspot(_require(calib_scores, "calib_scores", "dspot"),
                        _require(test_scores, "test_scores", "dspot"),
                        q=_option(options, "pot_q", 1e-3),
                        level=_option(options, "pot_level", 0.98),
                        depth=_option(options, "dspot_depth", 10),
                        relearn=_option(options, "dspot_relearn", 0))
  return thresholds


def _compute_tail_p(calib_scores: Any, test_scores: Any, options: Any) -> np.ndarray:
  del calib_scores, test_scores  # Unused: the level is a probability.
  return np.asarray(tail_p(_option(options, "tail_probability")))


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
    "dspot": _compute_dspot,
    "percentile": _compute_percentile,
    "tail_p": _compute_tail_p,
    "fixed": _compute_fixed,
}


def min_calibration(name: str, options: Any = None) -> int:
  """The fewest calibration scores method `name` can fit a threshold on with `options`."""
  if name in ("pot", "spot", "dspot"):
    level = check_open_unit(_option(options, "pot_level", 0.98), "pot_level")
    fewest = math.ceil(MIN_PEAKS / (1.0 - level)) + 1
    return fewest + (int(_option(options, "dspot_depth", 10)) if name == "dspot" else 0)
  return 1 if name == "percentile" else 0


def compute(name: str, *, calib_scores: Any = None, test_scores: Any = None,
            options: Any = None) -> np.ndarray:
  """Threshold by registry name, for configs.

  Args:
    name: a key of REGISTRY.
    calib_scores: (n,) calibration scores; needed by all but "tail_p" and "fixed".
    test_scores: (T,) test scores in time order; needed by the streaming
      methods "spot" and "dspot" only (which follow the stream without labels).
    options: mapping or ConfigDict with the fields of the module docstring.

  Returns:
    A 0-d float64 array (one threshold) or, for the streaming methods, a (T,)
    array with the threshold in effect at each test step. Either goes to `predict`.

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
    threshold: a scalar (or 0-d array), or a (T,) per-step array (streaming methods).

  Returns:
    (T,) uint8 predictions.

  Raises:
    ValueError: non-finite scores/thresholds or mismatched shapes.
  """
  scores = as_scores(test_scores, "test_scores")
  threshold = np.asarray(threshold, dtype=np.float64)
  if threshold.ndim not in (0, 1) or (threshold.ndim == 1 and threshold.shape != scores.shape):
    raise ValueError(
        f"threshold must be a scalar or have the scores' shape {scores.shape}, "
        f"got {threshold.shape}.")
  if not np.all(np.isfinite(threshold)):
    raise ValueError("threshold has NaN/inf values.")
  return (scores > threshold).astype(np.uint8)


class Follower(NamedTuple):
  """A threshold method following a score stream: `state` is a SPOT or DSPOT state for the
  streaming methods, the one fitted threshold (a float) for the others."""

  method: str
  state: Any


def start(name: str, *, calib_scores: Any = None, options: Any = None) -> Follower:
  """The threshold method `name` fitted on `calib_scores`, before the stream's first score."""
  if name == "spot":
    return Follower(name, spot_init(_require(calib_scores, "calib_scores", name),
                                    q=_option(options, "pot_q", 1e-3),
                                    level=_option(options, "pot_level", 0.98)))
  if name == "dspot":
    return Follower(name, dspot_init(_require(calib_scores, "calib_scores", name),
                                     q=_option(options, "pot_q", 1e-3),
                                     level=_option(options, "pot_level", 0.98),
                                     depth=_option(options, "dspot_depth", 10),
                                     relearn=_option(options, "dspot_relearn", 0)))
  return Follower(name, float(compute(name, calib_scores=calib_scores, options=options)))


def follow(follower: Follower, scores: Any) -> tuple[Follower, np.ndarray]:
  """The next (T,) scores of the stream -> (the follower after them, the (T,) threshold in
  effect for each), the same as `compute` on the whole stream gives."""
  if follower.method == "spot":
    state, levels, _ = spot_follow(follower.state, scores)
  elif follower.method == "dspot":
    state, levels, _ = dspot_follow(follower.state, scores)
  else:
    state, levels = follower.state, np.full(as_scores(scores, "scores").size, follower.state)
  return Follower(follower.method, state), levels
