"""Anomaly-detection metrics (host-side numpy): the TSB-AD set, PA%K, detection delay, oracle F1.

`threshold_free(labels, scores)` gives TSB-AD's nine leaderboard figures
(Liu and Paparrizos, "The Elephant in the Room: Towards A Reliable Time-Series
Anomaly Detection Benchmark", NeurIPS 2024); `at_threshold(labels, preds)` the
figures of binary predictions. Labels are 0/1 and scores finite, one per
timestep; anything else raises ValueError. Metrics that are undefined for the
given labels (no anomaly at all) are NaN rather than errors.
`interpretation(per_feature_scores, segments)` gives OmniAnomaly's HitRate@P%
and NDCG@P% of (T, D) per-feature scores against the explaining features.
"""

from tsad_jax.metrics.affiliation import affiliation_f
from tsad_jax.metrics.affiliation import affiliation_precision_recall
from tsad_jax.metrics.delay import detection_summary
from tsad_jax.metrics.delay import segment_delays
from tsad_jax.metrics.event import alarm_events
from tsad_jax.metrics.event import event_f1
from tsad_jax.metrics.interpretation import INTERPRETATION_PERCENTS
from tsad_jax.metrics.interpretation import interpretation
from tsad_jax.metrics.interpretation import interpretation_per_timestep
from tsad_jax.metrics.oracle import best_f1_threshold
from tsad_jax.metrics.point import confusion_counts
from tsad_jax.metrics.point import f1_from_counts
from tsad_jax.metrics.point import pa_k
from tsad_jax.metrics.point import point_adjust
from tsad_jax.metrics.range_based import range_f1
from tsad_jax.metrics.range_based import range_precision_recall
from tsad_jax.metrics.ranking import auc_pr
from tsad_jax.metrics.ranking import auc_roc
from tsad_jax.metrics.segments import anomaly_segments
from tsad_jax.metrics.suites import THRESHOLD_FREE_KEYS
from tsad_jax.metrics.suites import at_threshold
from tsad_jax.metrics.suites import threshold_free
from tsad_jax.metrics.volume import vus

__all__ = [
    "INTERPRETATION_PERCENTS",
    "THRESHOLD_FREE_KEYS",
    "affiliation_f",
    "affiliation_precision_recall",
    "alarm_events",
    "anomaly_segments",
    "at_threshold",
    "auc_pr",
    "auc_roc",
    "best_f1_threshold",
    "confusion_counts",
    "detection_summary",
    "event_f1",
    "f1_from_counts",
    "interpretation",
    "interpretation_per_timestep",
    "pa_k",
    "point_adjust",
    "range_f1",
    "range_precision_recall",
    "segment_delays",
    "threshold_free",
    "vus",
]
