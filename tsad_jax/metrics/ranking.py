"""Point-wise threshold-free metrics: AUC-PR (average precision) and AUC-ROC.

Both follow TSB-AD (Liu and Paparrizos, NeurIPS 2024), which takes
`sklearn.metrics.average_precision_score` and `roc_auc_score`: AUC-PR is the
step-wise average precision sum_k (R_k - R_{k-1}) P_k over every distinct
score threshold (not a trapezoid), AUC-ROC the trapezoidal area under the ROC
curve. Computed here in O(T log T) with one sort.
"""

import numpy as np
from numpy.typing import ArrayLike

from tsad_jax.metrics import inputs


def counts_by_threshold(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, ...]:
  """True/false positives when predicting `scores >= v`, for each distinct score v.

  Args:
    labels: (T,) validated 0/1 labels.
    scores: (T,) validated scores.

  Returns:
    (thresholds, tp, fp): the distinct scores in decreasing order and, for each,
    the number of anomalous and normal timesteps with a score at least that high.
  """
  order = np.argsort(-scores, kind="stable")
  ranked, hits = scores[order], labels[order].astype(np.int64)
  last_of_value = np.flatnonzero(np.r_[ranked[1:] != ranked[:-1], True])
  tp = np.cumsum(hits)[last_of_value]
  fp = last_of_value + 1 - tp
  return ranked[last_of_value], tp, fp


def auc_pr(labels: ArrayLike, scores: ArrayLike) -> float:
  """Area under the precision-recall curve as average precision.

  Args:
    labels: (T,) 0/1 labels.
    scores: (T,) finite scores, higher meaning more anomalous.

  Returns:
    sum over distinct thresholds of (recall gain) x precision; NaN without anomalies.

  Raises:
    ValueError: bad shapes, lengths, non-binary labels or non-finite scores.
  """
  y, s = inputs.labels_and_scores(labels, scores)
  _, tp, fp = counts_by_threshold(y, s)
  if tp[-1] == 0:
    return float("nan")
  recall = tp / tp[-1]
  precision = tp / (tp + fp)
  return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def auc_roc(labels: ArrayLike, scores: ArrayLike) -> float:
  """Trapezoidal area under the ROC curve (ties move TPR and FPR together).

  Args:
    labels: (T,) 0/1 labels.
    scores: (T,) finite scores, higher meaning more anomalous.

  Returns:
    AUC-ROC in [0, 1]; NaN unless both classes occur.

  Raises:
    ValueError: bad shapes, lengths, non-binary labels or non-finite scores.
  """
  y, s = inputs.labels_and_scores(labels, scores)
  _, tp, fp = counts_by_threshold(y, s)
  if tp[-1] == 0 or fp[-1] == 0:
    return float("nan")
  tpr = np.r_[0.0, tp / tp[-1]]
  fpr = np.r_[0.0, fp / fp[-1]]
  return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
