"""Puts every feature's score on a common scale before the scores are summed.

A model's per-feature errors can differ by orders of magnitude: a feature it
never learns to forecast well dominates the summed score all through a test
series, and an anomaly in a well-modelled feature is lost under it. GDN (Deng
and Hooi, AAAI 2021) divides each sensor's error by a robust spread:

  scaled = (score - median) / max(IQR, floor),

with the floor `floor` (config.eval.scaling_floor) x the mean IQR over
features, so that a feature whose score hardly varies (a metric that is
constant in training) cannot blow up.

Where the statistics come from (`config.eval.feature_scaling`):
  train: the calibration scores, from the training series only (by default its
         held-out validation tail). Causal: the scaled score at t reads nothing
         after t, so it works point by point on a stream. The default.
  test:  the scored series itself, as GDN does. Transductive: it needs the
         whole test series (but no labels); an explicit option.
  none:  the model's own scores.

How the scaled scores are summed (`config.eval.aggregation`):
  sum:     the scaled scores themselves.
  tail_p:  each feature's -log tail probability under a normal law with that
           feature's median and robust standard deviation (IQR / 1.349), the
           Gaussian scoring of Garg et al., "An Evaluation of Anomaly Detection
           and Diagnosis in Multivariate Time Series", IEEE TNNLS 2021. A score
           below the median adds about log 2 at most, one far above it about
           z^2 / 2, so a feature hit hard outweighs many slightly raised ones.
"""

import numpy as np
from scipy import special

MODES = ("none", "train", "test")
AGGREGATIONS = ("sum", "tail_p")
IQR_PER_STD = 1.3489795  # the interquartile range of a standard normal


def robust_stats(reference: np.ndarray, *, floor: float = 1e-2) -> tuple[np.ndarray, np.ndarray]:
  """(median, spread) per feature of (T, D) scores; spread is the IQR, floored."""
  low, median, high = np.percentile(reference, [25, 50, 75], axis=0)
  iqr = high - low
  smallest = floor * float(np.mean(iqr))
  return median, np.maximum(iqr, smallest if smallest > 0 else 1.0)


def scale(scores: np.ndarray, stats: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
  median, spread = stats
  return ((scores - median) / spread).astype(np.float32)


def tail_log_probabilities(scaled: np.ndarray) -> np.ndarray:
  """-log P(Z > z) with z = scaled x 1.349, for median/IQR-scaled scores (`scale`)."""
  z = np.asarray(scaled, np.float64) * IQR_PER_STD
  return (-special.log_ndtr(-z)).astype(np.float32)


def check(mode: str, floor: float, aggregation: str = "sum") -> None:
  if mode not in MODES:
    raise ValueError(f"config.eval.feature_scaling: unknown {mode!r}; choose from "
                     f"{', '.join(MODES)}.")
  if isinstance(floor, bool) or not isinstance(floor, int | float) or not 0 < floor <= 1:
    raise ValueError(f"config.eval.scaling_floor={floor!r}: use a fraction in (0, 1] of the "
                     "mean IQR, e.g. 0.01.")
  if aggregation not in AGGREGATIONS:
    raise ValueError(f"config.eval.aggregation: unknown {aggregation!r}; choose from "
                     f"{', '.join(AGGREGATIONS)}.")
  if aggregation == "tail_p" and mode == "none":
    raise ValueError("config.eval.aggregation='tail_p' fits each feature's distribution: set "
                     "config.eval.feature_scaling to train (causal) or test.")


def transform(scores: np.ndarray, stats: tuple[np.ndarray, np.ndarray] | None, *,
              aggregation: str = "sum") -> np.ndarray:
  """Per-feature scores scaled by `stats` (None: as they are), as `aggregation` says."""
  if stats is None:
    return scores
  scaled = scale(scores, stats)
  return tail_log_probabilities(scaled) if aggregation == "tail_p" else scaled


def apply(mode: str, test: np.ndarray, calibration: np.ndarray, *, floor: float = 1e-2,
          aggregation: str = "sum") -> tuple[np.ndarray, np.ndarray]:
  """(test, calibration) per-feature scores of one entity, scaled and transformed.

  `calibration` holds the entity's calibration scores (training data only);
  with mode "test" the statistics come from `test` and are applied to both.
  """
  check(mode, floor, aggregation)
  if mode == "none":
    return test, calibration
  stats = robust_stats(calibration if mode == "train" else test, floor=floor)
  return (transform(test, stats, aggregation=aggregation),
          transform(calibration, stats, aggregation=aggregation))
