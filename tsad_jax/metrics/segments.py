"""Runs of consecutive ones in a 0/1 vector (anomaly segments, predicted events)."""

import numpy as np
from numpy.typing import ArrayLike

from tsad_jax.metrics import inputs


def bounds(binary: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Inclusive (starts, ends) of the runs of ones of a validated 0/1 vector."""
  padded = np.zeros(binary.shape[0] + 2, dtype=np.int8)
  padded[1:-1] = binary
  step = np.diff(padded)
  return np.flatnonzero(step == 1), np.flatnonzero(step == -1) - 1


def anomaly_segments(labels: ArrayLike) -> list[tuple[int, int]]:
  """The anomalous segments of a label vector.

  Args:
    labels: (T,) 0/1 labels.

  Returns:
    [(start, end), ...] in time order, 0-based and inclusive at both ends.

  Raises:
    ValueError: labels not a 1-D 0/1 vector.
  """
  starts, ends = bounds(inputs.as_binary(labels, "labels"))
  return [(int(a), int(b)) for a, b in zip(starts, ends, strict=True)]


def run_max(values: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
  """max(values[start:end + 1]) for each of several disjoint, ordered, non-empty runs."""
  if starts.size == 0:
    return np.empty(0, dtype=values.dtype)
  cuts = np.stack([starts, ends + 1], axis=1).ravel()
  if cuts[-1] == values.shape[0]:
    cuts = cuts[:-1]
  return np.maximum.reduceat(values, cuts)[::2]


def run_sum(cumulative: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
  """Sums over inclusive runs from `cumulative` = concatenate([0], cumsum(values))."""
  return cumulative[ends + 1] - cumulative[starts]


def cumulative(values: np.ndarray) -> np.ndarray:
  """concatenate([0], cumsum(values)) in int64, for `run_sum`."""
  out = np.zeros(values.shape[0] + 1, dtype=np.int64)
  np.cumsum(values, out=out[1:])
  return out
