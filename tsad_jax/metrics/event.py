"""Event-based F1 as in TSB-AD: event-wise recall with point-wise precision.

Recall is the fraction of ground-truth segments with at least one predicted
point; precision is the ordinary point-wise precision (0 when nothing is
predicted); F = 2RP / (R + P). This is TSB-AD's `metric_EventF1PA`, itself
the "event-wise F-score" of Garg et al., "An Evaluation of Anomaly Detection
and Diagnosis in Multivariate Time Series", IEEE TNNLS 2021. Unlike TSB-AD's
`_get_events`, a segment that runs to the last timestep keeps its last point.
"""

import numpy as np
from numpy.typing import ArrayLike

from tsad_jax.metrics import inputs
from tsad_jax.metrics import segments


def _combine(recall: np.ndarray, precision: np.ndarray) -> np.ndarray:
  total = recall + precision
  out = np.zeros(np.broadcast(recall, precision).shape)
  np.divide(2 * recall * precision, total, out=out, where=total > 0)
  return out


def event_f1(labels: ArrayLike, preds: ArrayLike) -> float:
  """Event-based F1 of binary predictions.

  Args:
    labels: (T,) 0/1 labels.
    preds: (T,) 0/1 predictions.

  Returns:
    F1 of event recall and point precision; NaN without anomalies.

  Raises:
    ValueError: bad shapes, lengths or non-binary values.
  """
  y, p = inputs.labels_and_preds(labels, preds)
  starts, ends = segments.bounds(y)
  if starts.size == 0:
    return float("nan")
  found = segments.run_sum(segments.cumulative(p), starts, ends) > 0
  predicted = np.count_nonzero(p)
  precision = np.count_nonzero(y & p) / predicted if predicted else 0.0
  return float(_combine(np.mean(found), np.float64(precision)))


def alarm_events(labels: ArrayLike, preds: ArrayLike) -> dict[str, int]:
  """Alarm events (runs of predicted points) and how many of them touch no anomaly.

  Args:
    labels: (T,) 0/1 labels.
    preds: (T,) 0/1 predictions.

  Returns:
    {"alarm-events": runs of ones in `preds`, "false-alarm-events": those runs
    without a labelled point}.

  Raises:
    ValueError: bad shapes, lengths or non-binary values.
  """
  y, p = inputs.labels_and_preds(labels, preds)
  starts, ends = segments.bounds(p)
  hits = segments.run_sum(segments.cumulative(y), starts, ends)
  return {"alarm-events": int(starts.size), "false-alarm-events": int(np.sum(hits == 0))}


def best_event_f1(y: np.ndarray, s: np.ndarray, thresholds: np.ndarray) -> float:
  """Best event-based F1 of `s > threshold` over the given thresholds (validated inputs)."""
  starts, ends = segments.bounds(y)
  if starts.size == 0:
    return float("nan")
  seg_max = np.sort(segments.run_max(s, starts, ends))
  recall = (starts.size - np.searchsorted(seg_max, thresholds, side="right")) / starts.size
  every = np.sort(s)
  anomalous = np.sort(s[y == 1])
  predicted = s.size - np.searchsorted(every, thresholds, side="right")
  hits = anomalous.size - np.searchsorted(anomalous, thresholds, side="right")
  precision = np.zeros(thresholds.shape)
  np.divide(hits, predicted, out=precision, where=predicted > 0)
  return float(np.max(_combine(recall, precision)))
