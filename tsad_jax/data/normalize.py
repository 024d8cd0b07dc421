"""Per-feature normalisation fitted on the training series only.

"minmax" maps train to [0, 1] and clips test values to [-clip, 1 + clip], so a
far-off sensor glitch cannot dominate the model's input while values beyond the
training range (often the anomalies themselves) stay visible; clip=0 clips to
the training range exactly; "zscore" centres and scales by the train mean and standard
deviation; "none" is the identity. Constant features get scale 1, never 0.
"""

from typing import NamedTuple

import numpy as np

METHODS = ("minmax", "zscore", "none")


class Stats(NamedTuple):
  """`apply` computes clip((x - offset) / scale, lower, upper), each (D,)."""

  offset: np.ndarray
  scale: np.ndarray
  lower: np.ndarray
  upper: np.ndarray


def fit(train: np.ndarray, method: str, *, clip: float = 3.0) -> Stats:
  """Fits `method` to a (T, D) training series (`clip`: the minmax margin)."""
  train = np.asarray(train, dtype=np.float64)
  if train.ndim != 2 or len(train) == 0:
    raise ValueError(f"normalize.fit needs a non-empty (T, D) series, got shape {train.shape}.")
  width = train.shape[1]
  unbounded = np.full(width, -np.inf), np.full(width, np.inf)
  if method == "minmax":
    low = train.min(axis=0)
    if clip < 0:
      raise ValueError(f"config.data.minmax_clip must be >= 0, got {clip}.")
    return Stats(low, _safe(train.max(axis=0) - low, low), np.full(width, -float(clip)),
                 np.full(width, 1.0 + clip))
  if method == "zscore":
    mean = train.mean(axis=0)
    return Stats(mean, _safe(train.std(axis=0), mean), *unbounded)
  if method == "none":
    return Stats(np.zeros(width), np.ones(width), *unbounded)
  raise ValueError(
      f"Unknown normalisation {method!r}; set --config.data.normalize to one of {METHODS}.")


def apply(stats: Stats, x: np.ndarray) -> np.ndarray:
  """Normalises a (T, D) series with train statistics; keeps float32 input float32."""
  x = np.asarray(x)
  out = np.clip((x - stats.offset) / stats.scale, stats.lower, stats.upper)
  return out.astype(np.result_type(x.dtype, np.float32))


def _safe(scale: np.ndarray, level: np.ndarray) -> np.ndarray:
  """`scale`, or 1 where the feature is constant up to rounding."""
  return np.where(scale > 1e-10 * np.maximum(1.0, np.abs(level)), scale, 1.0)
