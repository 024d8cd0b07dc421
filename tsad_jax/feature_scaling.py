"""Puts every feature's score on a common scale before the scores are summed.

A model's per-feature errors can differ by orders of magnitude: a feature it
never learns to forecast well dominates the summed score all through a test
series, and an anomaly in a well-modelled feature is lost under it. GDN (Deng
and Hooi, AAAI 2021) divides each sensor's error by a robust spread:

  scaled = (score - median) / max(IQR, floor),

with the floor `floor` (config.eval.scaling_floor, default 0.01) x the mean
IQR over features, so that a feature whose score hardly varies (a metric that
is constant in training) cannot blow up.

Modes (`config.eval.feature_scaling`):
  none:  the model's own scores.
  train: median and IQR of the entity's training scores. Causal: usable online.
  test:  median and IQR of the scored series itself, as GDN does. Transductive:
         it needs the whole series but no labels.
"""

import numpy as np

MODES = ("none", "train", "test")


def robust_stats(reference: np.ndarray, *, floor: float = 1e-2) -> tuple[np.ndarray, np.ndarray]:
  """(median, spread) per feature of (T, D) scores; spread is the IQR, floored."""
  low, median, high = np.percentile(reference, [25, 50, 75], axis=0)
  iqr = high - low
  smallest = floor * float(np.mean(iqr))
  return median, np.maximum(iqr, smallest if smallest > 0 else 1.0)


def scale(scores: np.ndarray, stats: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
  median, spread = stats
  return ((scores - median) / spread).astype(np.float32)


def check(mode: str, floor: float) -> None:
  if mode not in MODES:
    raise ValueError(f"config.eval.feature_scaling: unknown {mode!r}; choose from "
                     f"{', '.join(MODES)}.")
  if isinstance(floor, bool) or not isinstance(floor, int | float) or not 0 < floor <= 1:
    raise ValueError(f"config.eval.scaling_floor={floor!r}: use a fraction in (0, 1] of the "
                     "mean IQR, e.g. 0.01.")


def apply(mode: str, test: np.ndarray, train: np.ndarray, *,
          floor: float = 1e-2) -> tuple[np.ndarray, np.ndarray]:
  """(test, train) per-feature scores of one entity, scaled as `mode` says."""
  check(mode, floor)
  if mode == "none":
    return test, train
  stats = robust_stats(train if mode == "train" else test, floor=floor)
  return scale(test, stats), scale(train, stats)
