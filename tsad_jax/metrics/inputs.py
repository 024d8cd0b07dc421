"""Validation of the metric inputs: 0/1 labels and predictions, finite scores."""

import numpy as np
from numpy.typing import ArrayLike


def _vector(values: ArrayLike, name: str) -> np.ndarray:
  array = np.asarray(values)
  if array.ndim != 1:
    raise ValueError(f"{name} must be a 1-D array (one value per timestep), got shape "
                     f"{array.shape}.")
  if array.size == 0:
    raise ValueError(f"{name} is empty; pass at least one timestep.")
  if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
    raise ValueError(f"{name} must be numeric or boolean, got dtype {array.dtype}.")
  return array


def as_binary(values: ArrayLike, name: str = "labels") -> np.ndarray:
  """A 1-D 0/1 vector (any bool, int or float dtype holding only 0 and 1) as int8.

  Args:
    values: (T,) labels or predictions.
    name: what to call the array in error messages.

  Returns:
    (T,) int8 array of 0 and 1.

  Raises:
    ValueError: not 1-D, empty, or holding a value other than 0 and 1 (NaN included).
  """
  array = _vector(values, name)
  bad = ~np.isin(array, (0, 1))
  if bad.any():
    first = int(np.argmax(bad))
    raise ValueError(f"{name} must be binary (0/1), but {name}[{first}] = {array[first].item()!r} "
                     f"({int(bad.sum())} non-binary values).")
  return array.astype(np.int8)


def as_scores(values: ArrayLike, name: str = "scores") -> np.ndarray:
  """A 1-D vector of finite scores as float64.

  Args:
    values: (T,) anomaly scores, higher meaning more anomalous.
    name: what to call the array in error messages.

  Returns:
    (T,) float64 array.

  Raises:
    ValueError: not 1-D, empty, non-numeric, or holding NaN or infinity.
  """
  array = _vector(values, name).astype(np.float64)
  bad = ~np.isfinite(array)
  if bad.any():
    first = int(np.argmax(bad))
    raise ValueError(f"{name} must be finite, but {name}[{first}] = {array[first].item()} "
                     f"({int(bad.sum())} NaN or infinite values).")
  return array


def same_length(labels: np.ndarray, other: np.ndarray, other_name: str) -> None:
  if labels.shape != other.shape:
    raise ValueError(f"labels and {other_name} must have the same length, got {labels.shape[0]} "
                     f"labels and {other.shape[0]} {other_name}.")


def labels_and_scores(labels: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
  """Validated (int8 labels, float64 scores) of equal length."""
  y, s = as_binary(labels, "labels"), as_scores(scores, "scores")
  same_length(y, s, "scores")
  return y, s


def labels_and_preds(labels: ArrayLike, preds: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
  """Validated (int8 labels, int8 predictions) of equal length."""
  y, p = as_binary(labels, "labels"), as_binary(preds, "preds")
  same_length(y, p, "preds")
  return y, p
