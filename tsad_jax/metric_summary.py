"""From per-timestep scores and labels to the figures of `summary.json`.

Threshold-free metrics lead. Each threshold method is calibrated on the
entity's own calibration scores (training data only: by default the held-out
validation tail), never on test labels; the first configured method raises
the alarms, and the best-F1 threshold, which sees the test labels, is
reported beside it as an oracle.
Over several entities every figure is given per entity, as the mean over
entities, and pooled (threshold-free metrics on the concatenated series;
thresholded ones from true and false positives summed over entities).
A test series without labels gets only its thresholds and alarms (`alarms_only`).
"""

from collections.abc import Sequence

import ml_collections
import numpy as np

from tsad_jax import config_names
from tsad_jax import metrics
from tsad_jax import thresholds
from tsad_jax.metrics.segments import anomaly_segments

ORACLE = "best_f1_oracle"


def _mean(per_entity: dict[str, dict[str, float]]) -> dict[str, float]:
  """Mean of each figure over the entities that have it (NaN: undefined there)."""
  keys = next(iter(per_entity.values())).keys()
  out = {}
  for k in keys:
    defined = [v[k] for v in per_entity.values() if not np.isnan(v[k])]
    out[k] = float(np.mean(defined)) if defined else float("nan")
  return out


def pooled_counts(labels: Sequence[np.ndarray], preds: Sequence[np.ndarray], *,
                  points_per_day: float | None = None) -> dict[str, float]:
  """Thresholded figures of all entities' points together (counts summed over entities)."""
  figures = {}
  for adjust, prefix in ((None, ""), ("pa", "PA-")):
    counts = [metrics.confusion_counts(y, p, adjust=adjust)
              for y, p in zip(labels, preds, strict=True)]
    total = {k: sum(c[k] for c in counts) for k in counts[0]}
    precision, recall, f1 = metrics.f1_from_counts(total)
    figures.update({f"{prefix}precision": precision, f"{prefix}recall": recall,
                    f"{prefix}F1": f1})
  points = sum(len(y) for y in labels)
  segments = [len(metrics.anomaly_segments(y)) for y in labels]
  detected = [metrics.detection_summary(y, p)[1] for y, p in zip(labels, preds, strict=True)]
  false_alarms = sum(metrics.alarm_events(y, p)["false-alarm-events"]
                     for y, p in zip(labels, preds, strict=True))
  figures.update({
      "flagged": sum(int(np.sum(p)) for p in preds) / points,
      "anomaly-share": sum(int(np.sum(y)) for y in labels) / points,
      "detected-segments": (sum(n * d for n, d in zip(segments, detected, strict=True) if n)
                            / sum(segments) if sum(segments) else float("nan")),
      "false-alarm-events": false_alarms,
      "false-alarms-per-day": _per_day(false_alarms, points, points_per_day),
  })
  return figures


def _per_day(count: int, points: int, points_per_day: float | None) -> float:
  return count * points_per_day / points if points_per_day else float("nan")


def _aggregate(names, per_entity: dict[str, dict[str, float]], pooled: dict[str, float]):
  out = {"mean": _mean(per_entity), "pooled": pooled}
  if len(names) > 1:
    out["per_entity"] = per_entity
  return out


def threshold_free(names, labels, scores, *, sliding_window: int) -> dict:
  """Threshold-free metrics per entity, mean and pooled."""
  per_entity = {n: metrics.threshold_free(y, s, sliding_window=sliding_window)
                for n, y, s in zip(names, labels, scores, strict=True)}
  pooled = (next(iter(per_entity.values())) if len(names) == 1 else
            metrics.threshold_free(np.concatenate(labels), np.concatenate(scores),
                                   sliding_window=sliding_window))
  return _aggregate(names, per_entity, pooled)


def predictions(labels, scores, calib_scores, cfg: ml_collections.ConfigDict) -> dict[str, list]:
  """Per method (each configured one, then the oracle): each entity's 0/1 predictions.

  Each entry is a list of (threshold, predictions) per entity; the threshold is
  one value, or one per test step for the streaming methods. Without labels (any
  entity's None) there is no oracle.
  """
  out = {}
  oracle = [ORACLE] if all(y is not None for y in labels) else []
  for method in methods(cfg) + oracle:
    out[method] = []
    for y, s, calib in zip(labels, scores, calib_scores, strict=True):
      if method == ORACLE:
        threshold = np.asarray(metrics.best_f1_threshold(y, s)[0])
      else:
        threshold = thresholds.compute(method, calib_scores=calib, test_scores=s, options=cfg)
      out[method].append((threshold, thresholds.predict(s, threshold)))
  return out


def thresholded(names, labels, scores, calib_scores, cfg: ml_collections.ConfigDict, *,
                points_per_day: float | None = None, predicted: dict | None = None) -> dict:
  """Figures at each configured threshold method, and at the oracle threshold.

  `predicted` (from `predictions`) saves computing the thresholds again.
  """
  predicted = predicted or predictions(labels, scores, calib_scores, cfg)
  out = {}
  for method, per_method in predicted.items():
    per_entity = {}
    for name, y, (threshold, preds) in zip(names, labels, per_method, strict=True):
      figures = metrics.at_threshold(y, preds)
      figures["false-alarms-per-day"] = _per_day(figures["false-alarm-events"], len(y),
                                                 points_per_day)
      figures["threshold"] = float(np.mean(threshold))
      per_entity[name] = figures
    pooled = pooled_counts(labels, [preds for _, preds in per_method],
                           points_per_day=points_per_day)
    out[method] = _aggregate(names, per_entity, pooled)
  return out


def alarms_only(names, predicted: dict, *, points_per_day: float | None = None) -> dict:
  """What an unlabeled series has, per threshold method: each entity's threshold, the share
  of its rows flagged, its alarm events and those per day; mean and pooled."""
  out = {}
  for method, per_method in predicted.items():
    per_entity = {}
    for name, (threshold, preds) in zip(names, per_method, strict=True):
      events = len(anomaly_segments(preds))
      per_entity[name] = {"threshold": float(np.mean(threshold)), "flagged": float(preds.mean()),
                          "alarm-events": events,
                          "alarm-events-per-day": _per_day(events, len(preds), points_per_day)}
    flags = np.concatenate([preds for _, preds in per_method])
    events = sum(e["alarm-events"] for e in per_entity.values())
    pooled = {"flagged": float(flags.mean()), "alarm-events": events,
              "alarm-events-per-day": _per_day(events, len(flags), points_per_day)}
    out[method] = _aggregate(names, per_entity, pooled)
  return out


def methods(cfg: ml_collections.ConfigDict) -> list[str]:
  """The configured threshold methods (config.threshold.methods); the first raises the alarms."""
  return config_names.comma_list(cfg.methods)


def interpretation(names, per_feature_scores, segments, *,
                   percents=metrics.INTERPRETATION_PERCENTS) -> dict | None:
  """HitRate@P% and NDCG@P% of the per-feature scores against the explaining features.

  Args:
    names: entity names.
    per_feature_scores: one (T, D) array of test scores per entity.
    segments: one sequence of labelled segments per entity (`Entity.segments`);
      only segments with `dims` count.
    percents: the P of HitRate@P% and NDCG@P%.

  Returns:
    None when no entity has a segment with explaining features; otherwise
    {"mean": figures averaged over the entities that have them, plus "entities"
    (how many), "pooled": figures averaged over all their timesteps together,
    plus "timesteps", and for several entities "per_entity": {name: figures
    with "timesteps"} for the entities that have them}.
  """
  per_entity = {}
  for name, scores, segs in zip(names, per_feature_scores, segments, strict=True):
    figures = metrics.interpretation(scores, segs, percents=percents)
    if figures is not None:
      per_entity[name] = figures
  if not per_entity:
    return None
  counts = np.array([f["timesteps"] for f in per_entity.values()], dtype=np.float64)
  keys = [k for k in next(iter(per_entity.values())) if k != "timesteps"]
  # Each entity's figure is a mean over its timesteps, so the count-weighted mean
  # of those is the mean over all timesteps of all entities.
  pooled = {k: float(np.average([f[k] for f in per_entity.values()], weights=counts))
            for k in keys}
  pooled["timesteps"] = int(counts.sum())
  out = _aggregate(names, per_entity, pooled)
  del out["mean"]["timesteps"]
  out["mean"]["entities"] = len(per_entity)
  return out


def summarize(names, labels, scores, calib_scores, config: ml_collections.ConfigDict, *,
              points_per_day: float | None = None, predicted: dict | None = None) -> dict:
  """The metric part of `summary.json` for one set of per-entity total scores."""
  return {
      "threshold_free": threshold_free(names, labels, scores,
                                       sliding_window=config.eval.vus_window),
      "thresholds": thresholded(names, labels, scores, calib_scores, config.threshold,
                                points_per_day=points_per_day, predicted=predicted),
  }
