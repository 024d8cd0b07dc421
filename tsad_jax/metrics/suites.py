"""The two metric sets the summaries report: threshold-free (TSB-AD) and at a threshold."""

from numpy.typing import ArrayLike

from tsad_jax.metrics import affiliation
from tsad_jax.metrics import delay
from tsad_jax.metrics import event
from tsad_jax.metrics import inputs
from tsad_jax.metrics import oracle
from tsad_jax.metrics import point
from tsad_jax.metrics import range_based
from tsad_jax.metrics import ranking
from tsad_jax.metrics import threshold_sweep
from tsad_jax.metrics import volume

THRESHOLD_FREE_KEYS = ("AUC-PR", "AUC-ROC", "VUS-PR", "VUS-ROC", "Standard-F1", "PA-F1",
                       "Event-based-F1", "R-based-F1", "Affiliation-F")
PA_K_REPORTED = 20


def threshold_free(labels: ArrayLike, scores: ArrayLike, *,
                   sliding_window: int = 100) -> dict[str, float]:
  """TSB-AD's nine metrics of `get_metrics` (Liu and Paparrizos, NeurIPS 2024).

  AUC-PR (average precision), AUC-ROC, VUS-PR and VUS-ROC are threshold-free;
  Standard-F1 is the best point F1 over every distinct score, and PA-F1,
  Event-based-F1, R-based-F1 and Affiliation-F the best over TSB-AD's 100
  evenly spaced thresholds between min and max score. They all see the labels.

  Args:
    labels: (T,) 0/1 labels.
    scores: (T,) finite scores, higher meaning more anomalous.
    sliding_window: the VUS buffer size L (see `vus`).

  Returns:
    The nine figures in the order of `THRESHOLD_FREE_KEYS`; all NaN when the
    labels hold no anomaly (every one of them is undefined then).

  Raises:
    ValueError: bad shapes, lengths, non-binary labels, non-finite scores or a
      bad sliding_window.
  """
  y, s = inputs.labels_and_scores(labels, scores)
  vus_pr, vus_roc = volume.vus(y, s, sliding_window=sliding_window)
  if not y.any():
    return dict.fromkeys(THRESHOLD_FREE_KEYS, float("nan"))
  candidates = threshold_sweep.thresholds(s)
  return {
      "AUC-PR": ranking.auc_pr(y, s),
      "AUC-ROC": ranking.auc_roc(y, s),
      "VUS-PR": vus_pr,
      "VUS-ROC": vus_roc,
      "Standard-F1": oracle.standard_f1(y, s),
      "PA-F1": threshold_sweep.best_pa_f1(y, s, candidates),
      "Event-based-F1": event.best_event_f1(y, s, candidates),
      "R-based-F1": range_based.best_range_f1(y, s, candidates),
      "Affiliation-F": affiliation.best_affiliation_f(y, s, candidates),
  }


def at_threshold(labels: ArrayLike, preds: ArrayLike) -> dict[str, float]:
  """Figures of binary predictions (scores already thresholded).

  Keys: "precision", "recall", "F1" (point-wise); "PA-precision", "PA-recall",
  "PA-F1" (after point adjustment); "PA%K-AUC" (area under F1 after PA%K over
  K = 0..100, Kim et al., AAAI 2022) and "PA%K-F1@K=20"; "Event-based-F1",
  "R-based-F1", "Affiliation-F" (TSB-AD's definitions at these predictions);
  "mean-detection-delay" (steps from segment start to first predicted point,
  over detected segments) and "detected-segments" (event recall: the fraction
  of segments with a predicted point); "flagged" (the share of points
  predicted) beside "anomaly-share" (the share labelled); "alarm-events" (runs
  of predicted points) and "false-alarm-events" (those touching no anomaly).

  Args:
    labels: (T,) 0/1 labels.
    preds: (T,) 0/1 predictions.

  Returns:
    The figures above. Precisions are 0 when nothing is predicted; every figure
    but "precision" and "PA-precision" is NaN when the labels hold no anomaly,
    and the mean delay is NaN when no segment is detected.

  Raises:
    ValueError: bad shapes, lengths or non-binary values.
  """
  y, p = inputs.labels_and_preds(labels, preds)
  precision, recall, f1 = point.f1_from_counts(point.counts(y, p))
  pa_precision, pa_recall, pa_f1 = point.f1_from_counts(point.confusion_counts(y, p, adjust="pa"))
  pa20 = point.confusion_counts(y, p, adjust="pak", k=PA_K_REPORTED)
  mean_delay, detected = delay.detection_summary(y, p)
  return {
      "precision": precision,
      "recall": recall,
      "F1": f1,
      "PA-precision": pa_precision,
      "PA-recall": pa_recall,
      "PA-F1": pa_f1,
      "PA%K-AUC": point.pa_k_auc(y, p),
      f"PA%K-F1@K={PA_K_REPORTED}": point.f1_from_counts(pa20)[2],
      "Event-based-F1": event.event_f1(y, p),
      "R-based-F1": range_based.range_f1(y, p),
      "Affiliation-F": affiliation.affiliation_f(y, p),
      "mean-detection-delay": mean_delay,
      "detected-segments": detected,
      "flagged": float(p.mean()),
      "anomaly-share": float(y.mean()),
      **event.alarm_events(y, p),
  }
