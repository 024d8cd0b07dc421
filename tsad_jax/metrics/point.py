"""Point-wise counts and F1, point adjustment (PA) and PA%K.

Point adjustment (Xu et al., WWW 2018) marks a whole ground-truth segment as
detected once any of its points is predicted. PA%K (Kim et al., "Towards a
Rigorous Evaluation of Time-series Anomaly Detection", AAAI 2022) does so only
when more than K percent of the segment's points are predicted; K = 0 is PA and
K = 100 leaves the predictions unchanged. The whole segment is filled; TSB-AD's
`_adjust_predicts` leaves index 0 unfilled when a segment starting there is
first hit later, which lowers its PA-F1 in that case only.

Zero-division conventions: precision is 0 when nothing is predicted (as
sklearn's `zero_division=0`, which TSB-AD uses); recall and F1 are NaN when the
labels hold no anomaly.
"""

import numpy as np
from numpy.typing import ArrayLike

from tsad_jax.metrics import inputs
from tsad_jax.metrics import segments

ADJUSTMENTS = (None, "pa", "pak")
PA_K_GRID = np.arange(101)


def f1_from_counts(counts: dict[str, int]) -> tuple[float, float, float]:
  """Precision, recall and F1 from confusion counts (summable over entities).

  Args:
    counts: a mapping with at least "tp", "fp" and "fn".

  Returns:
    (precision, recall, f1): precision 0 when tp + fp = 0; recall and F1 NaN
    when tp + fn = 0; F1 0 when precision and recall are both 0.
  """
  tp, fp, fn = (float(counts[key]) for key in ("tp", "fp", "fn"))
  precision = tp / (tp + fp) if tp + fp > 0 else 0.0
  if tp + fn == 0:
    return precision, float("nan"), float("nan")
  recall = tp / (tp + fn)
  f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
  return precision, recall, f1


def f1_vector(tp: np.ndarray, fp: np.ndarray, positives: int) -> np.ndarray:
  """F1 = 2 tp / (2 tp + fp + fn) element-wise, 0 where nothing is predicted or found."""
  tp, fp = np.asarray(tp, dtype=np.float64), np.asarray(fp, dtype=np.float64)
  denominator = tp + fp + positives
  out = np.zeros(np.broadcast(tp, fp).shape)
  np.divide(2 * tp, denominator, out=out, where=denominator > 0)
  return out


def _adjusted(y: np.ndarray, p: np.ndarray, k: float) -> np.ndarray:
  starts, ends = segments.bounds(y)
  hits = segments.run_sum(segments.cumulative(p), starts, ends)
  lengths = ends - starts + 1
  detected = hits * 100 > k * lengths
  mark = np.zeros(y.shape[0] + 1, dtype=np.int64)
  np.add.at(mark, starts[detected], 1)
  np.add.at(mark, ends[detected] + 1, -1)
  return (p.astype(bool) | (np.cumsum(mark[:-1]) > 0)).astype(np.int8)


def _check_k(k: float) -> float:
  if k is None or not np.isfinite(k) or not 0 <= k <= 100:
    raise ValueError(f"k must be a percentage in [0, 100], got {k!r}.")
  return float(k)


def point_adjust(labels: ArrayLike, preds: ArrayLike) -> np.ndarray:
  """Point-adjusted predictions: every segment with a predicted point becomes fully predicted.

  Args:
    labels: (T,) 0/1 labels.
    preds: (T,) 0/1 predictions.

  Returns:
    (T,) int8 adjusted predictions (predictions outside segments are kept).

  Raises:
    ValueError: bad shapes, lengths or non-binary values.
  """
  y, p = inputs.labels_and_preds(labels, preds)
  return _adjusted(y, p, 0.0)


def pa_k(labels: ArrayLike, preds: ArrayLike, k: float) -> np.ndarray:
  """PA%K predictions (Kim et al., AAAI 2022).

  Args:
    labels: (T,) 0/1 labels.
    preds: (T,) 0/1 predictions.
    k: percentage in [0, 100]; a segment becomes fully predicted when strictly
      more than k% of its points are predicted, otherwise it is left as is.

  Returns:
    (T,) int8 adjusted predictions.

  Raises:
    ValueError: bad shapes, lengths, non-binary values or k outside [0, 100].
  """
  y, p = inputs.labels_and_preds(labels, preds)
  return _adjusted(y, p, _check_k(k))


def counts(y: np.ndarray, p: np.ndarray) -> dict[str, int]:
  """Confusion counts of validated 0/1 vectors."""
  tp = int(np.count_nonzero(y & p))
  fp = int(np.count_nonzero(p)) - tp
  fn = int(np.count_nonzero(y)) - tp
  return {"tp": tp, "fp": fp, "fn": fn, "tn": y.shape[0] - tp - fp - fn}


def confusion_counts(labels: ArrayLike, preds: ArrayLike, *, adjust: str | None = None,
                     k: float | None = None) -> dict[str, int]:
  """True/false positives/negatives, optionally after point adjustment.

  Args:
    labels: (T,) 0/1 labels.
    preds: (T,) 0/1 predictions.
    adjust: None (raw points), "pa" (point adjustment) or "pak" (PA%K, needs k).
    k: the PA%K percentage in [0, 100]; only with adjust="pak".

  Returns:
    {"tp", "fp", "fn", "tn"} as ints; sum them over entities for pooled metrics.

  Raises:
    ValueError: bad inputs, an unknown `adjust`, or k missing/out of range for "pak".
  """
  y, p = inputs.labels_and_preds(labels, preds)
  if adjust not in ADJUSTMENTS:
    raise ValueError(f"adjust must be one of {ADJUSTMENTS}, got {adjust!r}.")
  if adjust == "pa":
    p = _adjusted(y, p, 0.0)
  elif adjust == "pak":
    p = _adjusted(y, p, _check_k(k))
  elif k is not None:
    raise ValueError("k is only used with adjust='pak'.")
  return counts(y, p)


def pa_k_curve(y: np.ndarray, p: np.ndarray) -> np.ndarray:
  """F1 after PA%K for K = 0, 1, ..., 100 (validated inputs)."""
  starts, ends = segments.bounds(y)
  hits = segments.run_sum(segments.cumulative(p), starts, ends)
  lengths = ends - starts + 1
  base = counts(y, p)
  detected = hits[None, :] * 100 > PA_K_GRID[:, None] * lengths[None, :]
  tp = base["tp"] + (detected * (lengths - hits)[None, :]).sum(axis=1)
  return f1_vector(tp, np.full(tp.shape, base["fp"]), base["tp"] + base["fn"])


def pa_k_auc(y: np.ndarray, p: np.ndarray) -> float:
  """Area under the PA%K F1 curve over K/100 in [0, 1] (trapezoid); NaN without anomalies."""
  if not y.any():
    return float("nan")
  return float(np.trapezoid(pa_k_curve(y, p), PA_K_GRID / 100))
