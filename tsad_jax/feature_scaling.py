"""Puts every feature's score on a common scale before the scores are summed.

A model's per-feature errors can differ by orders of magnitude: a feature it
never learns to forecast well dominates the summed score all through a test
series, and an anomaly in a well-modelled feature is lost under it. GDN (Deng
and Hooi, AAAI 2021) divides each sensor's error by a robust spread:

  scaled = (score - median) / max(IQR, floor),

with the floor FLOOR_FRACTION x the mean IQR over features, so that a feature
whose score hardly varies (constant in training) cannot blow up.

Modes (`config.eval.feature_scaling`):
  none:  the model's own scores.
  train: median and IQR of the entity's training scores. Causal: usable online.
  test:  median and IQR of the scored series itself, as GDN does. Transductive:
         it needs the whole series but no labels.
"""

import numpy as np

MODES = ("none", "train", "test")
FLOOR_FRACTION = 1e-2


def robust_stats(reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(median, spread) per feature of (T, D) scores; spread is the floored IQR."""
  low, median, high = np.percentile(reference, [25, 50, 75], axis=0)
  iqr = high - low
  floor = FLOOR_FRACTION * float(np.mean(iqr))
  return median, np.maximum(iqr, floor if floor > 0 else 1.0)


def scale(scores: np.ndarray, stats: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
  median, spread = stats
  return ((scores - median) / spread).astype(np.float32)


def check(mode: str) -> None:
  if mode not in MODES:
    raise ValueError(f"config.eval.feature_scaling: unknown {mode!r}; choose from "
                     f"{', '.join(MODES)}.")


def apply(mode: str, test: np.ndarray, train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(test, train) per-feature scores of one entity, scaled as `mode` says."""
  check(mode)
  if mode == "none":
    return test, train
  stats = robust_stats(train if mode == "train" else test)
  return scale(test, stats), scale(train, stats)
