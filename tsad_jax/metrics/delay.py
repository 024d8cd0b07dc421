"""Detection delay: how many steps after a segment starts its first predicted point comes."""

import numpy as np
from numpy.typing import ArrayLike

from tsad_jax.metrics import inputs
from tsad_jax.metrics import segments


def segment_delays(labels: ArrayLike, preds: ArrayLike) -> np.ndarray:
  """Delay of each ground-truth segment.

  Args:
    labels: (T,) 0/1 labels.
    preds: (T,) 0/1 predictions.

  Returns:
    (segments,) float array: steps from each segment's start to its first
    predicted point (0 when the start itself is predicted), NaN when the
    segment has no predicted point.

  Raises:
    ValueError: bad shapes, lengths or non-binary values.
  """
  y, p = inputs.labels_and_preds(labels, preds)
  starts, ends = segments.bounds(y)
  alarms = np.flatnonzero(p)
  index = np.searchsorted(alarms, starts)
  first = alarms[np.minimum(index, alarms.size - 1)] if alarms.size else np.zeros_like(starts)
  found = (index < alarms.size) & (first <= ends)
  return np.where(found, first - starts, np.nan).astype(np.float64)


def detection_summary(labels: ArrayLike, preds: ArrayLike) -> tuple[float, float]:
  """Mean detection delay and fraction of detected segments.

  Args:
    labels: (T,) 0/1 labels.
    preds: (T,) 0/1 predictions.

  Returns:
    (mean delay over detected segments, detected fraction); the mean is NaN when
    no segment is detected, both are NaN without anomalies.

  Raises:
    ValueError: bad shapes, lengths or non-binary values.
  """
  delays = segment_delays(labels, preds)
  if delays.size == 0:
    return float("nan"), float("nan")
  found = ~np.isnan(delays)
  mean = float(np.mean(delays[found])) if found.any() else float("nan")
  return mean, float(np.mean(found))
