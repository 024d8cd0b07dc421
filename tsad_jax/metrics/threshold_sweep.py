"""TSB-AD's threshold sweep for the best-over-thresholds F1 variants, and the best PA-F1.

TSB-AD takes PA-F1, Event-based-F1, R-based-F1 and Affiliation-F as the best
value over 100 thresholds `linspace(min(scores), max(scores), 100)`, predicting
`scores > threshold` (so the last threshold predicts nothing).
"""

import numpy as np

from tsad_jax.metrics import point
from tsad_jax.metrics import segments

NUM_THRESHOLDS = 100


def thresholds(s: np.ndarray, num: int = NUM_THRESHOLDS) -> np.ndarray:
  return np.linspace(s.min(), s.max(), num)


def best_pa_f1(y: np.ndarray, s: np.ndarray, candidates: np.ndarray) -> float:
  """Best point-adjusted F1 of `s > threshold` over the candidates (validated inputs)."""
  starts, ends = segments.bounds(y)
  if starts.size == 0:
    return float("nan")
  seg_max = segments.run_max(s, starts, ends)
  order = np.argsort(seg_max)
  lengths = np.r_[0, np.cumsum((ends - starts + 1)[order][::-1])]
  found = starts.size - np.searchsorted(seg_max[order], candidates, side="right")
  normal = np.sort(s[y == 0])
  false_alarms = normal.size - np.searchsorted(normal, candidates, side="right")
  return float(np.max(point.f1_vector(lengths[found], false_alarms, int(np.count_nonzero(y)))))
