"""Range-based precision, recall and F1 (Tatbul et al., NeurIPS 2018) with TSB-AD's settings.

For each ground-truth range R_i with predicted ranges P_j:
  recall_i = alpha * [R_i overlaps some P_j]
             + (1 - alpha) * |R_i n P| / |R_i| * 1 / #{j : P_j overlaps R_i},
and symmetrically precision_j of each predicted range with alpha = 0. Recall
and precision are the means over ranges (precision 0 without predicted
ranges); F = 2PR / (P + R). TSB-AD (`metric_RF1`) uses alpha = 0.2, a flat
positional bias and the reciprocal cardinality factor, as here.
"""

import numpy as np
from numpy.typing import ArrayLike

from tsad_jax.metrics import inputs
from tsad_jax.metrics import segments

ALPHA = 0.2


def _per_range(starts: np.ndarray, ends: np.ndarray, cum_other: np.ndarray,
               other_starts: np.ndarray, other_ends: np.ndarray, alpha: float) -> np.ndarray:
  overlap = segments.run_sum(cum_other, starts, ends)
  cardinality = (np.searchsorted(other_starts, ends, side="right")
                 - np.searchsorted(other_ends, starts, side="left"))
  share = np.zeros(starts.shape)
  np.divide(overlap / (ends - starts + 1), cardinality, out=share, where=cardinality > 0)
  return alpha * (overlap > 0) + (1 - alpha) * share


def _from_bounds(y_bounds, cum_y, p: np.ndarray) -> tuple[float, float]:
  y_starts, y_ends = y_bounds
  p_starts, p_ends = segments.bounds(p)
  recall = _per_range(y_starts, y_ends, segments.cumulative(p), p_starts, p_ends, ALPHA)
  if p_starts.size == 0:
    return 0.0, float(np.mean(recall))
  precision = _per_range(p_starts, p_ends, cum_y, y_starts, y_ends, 0.0)
  return float(np.mean(precision)), float(np.mean(recall))


def _f(precision: float, recall: float) -> float:
  return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def range_precision_recall(labels: ArrayLike, preds: ArrayLike) -> tuple[float, float]:
  """Range-based precision and recall (alpha = 0.2 for recall, flat bias).

  Args:
    labels: (T,) 0/1 labels.
    preds: (T,) 0/1 predictions.

  Returns:
    (precision, recall); (0, 0) with nothing predicted, NaNs without anomalies.

  Raises:
    ValueError: bad shapes, lengths or non-binary values.
  """
  y, p = inputs.labels_and_preds(labels, preds)
  if not y.any():
    return float("nan"), float("nan")
  return _from_bounds(segments.bounds(y), segments.cumulative(y), p)


def range_f1(labels: ArrayLike, preds: ArrayLike) -> float:
  """Range-based F1 (TSB-AD's R-based-F1 at given predictions); NaN without anomalies.

  Args:
    labels: (T,) 0/1 labels.
    preds: (T,) 0/1 predictions.

  Returns:
    2PR / (P + R) of `range_precision_recall`, 0 when both are 0.

  Raises:
    ValueError: bad shapes, lengths or non-binary values.
  """
  precision, recall = range_precision_recall(labels, preds)
  return float("nan") if np.isnan(recall) else _f(precision, recall)


def best_range_f1(y: np.ndarray, s: np.ndarray, thresholds: np.ndarray) -> float:
  """Best range-based F1 of `s > threshold` over the given thresholds (validated inputs)."""
  if not y.any():
    return float("nan")
  y_bounds, cum_y = segments.bounds(y), segments.cumulative(y)
  return max(_f(*_from_bounds(y_bounds, cum_y, (s > t).astype(np.int8))) for t in thresholds)
