"""From per-timestep scores and labels to the figures of `summary.json`.

Threshold-free metrics lead. Each threshold method is calibrated on the
entity's own training (or validation) scores, never on test labels; the
best-F1 threshold does see the test labels and is reported as an oracle.
Over several entities every figure is given per entity, as the mean over
entities, and pooled (threshold-free metrics on the concatenated series;
thresholded ones from true and false positives summed over entities).
"""

from collections.abc import Sequence

import ml_collections
import numpy as np

from tsad_jax import metrics
from tsad_jax import thresholds

ORACLE = "best_f1_oracle"


def _mean(per_entity: dict[str, dict[str, float]]) -> dict[str, float]:
  """Mean of each figure over the entities that have it (NaN: undefined there)."""
  keys = next(iter(per_entity.values())).keys()
  out = {}
  for k in keys:
    defined = [v[k] for v in per_entity.values() if not np.isnan(v[k])]
    out[k] = float(np.mean(defined)) if defined else float("nan")
  return out


def pooled_counts(labels: Sequence[np.ndarray], preds: Sequence[np.ndarray]) -> dict[str, float]:
  figures = {}
  for adjust, prefix in ((None, ""), ("pa", "PA-")):
    counts = [metrics.confusion_counts(y, p, adjust=adjust)
              for y, p in zip(labels, preds, strict=True)]
    total = {k: sum(c[k] for c in counts) for k in counts[0]}
    precision, recall, f1 = metrics.f1_from_counts(total)
    figures.update({f"{prefix}precision": precision, f"{prefix}recall": recall,
                    f"{prefix}F1": f1})
  return figures


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


def thresholded(names, labels, scores, calib_scores, cfg: ml_collections.ConfigDict) -> dict:
  """Figures at each configured threshold method, and at the oracle threshold."""
  out = {}
  methods = [m.strip() for m in cfg.methods.split(",") if m.strip()]  # checked by check_config
  for method in methods + [ORACLE]:
    per_entity, all_preds = {}, []
    for name, y, s, calib in zip(names, labels, scores, calib_scores, strict=True):
      if method == ORACLE:
        threshold = metrics.best_f1_threshold(y, s)[0]
      else:
        threshold = thresholds.compute(method, calib_scores=calib, test_scores=s, options=cfg)
      preds = thresholds.predict(s, threshold)
      figures = metrics.at_threshold(y, preds)
      figures["threshold"] = float(np.mean(threshold))
      per_entity[name] = figures
      all_preds.append(preds)
    out[method] = _aggregate(names, per_entity, pooled_counts(labels, all_preds))
  return out


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


def summarize(names, labels, scores, calib_scores, config: ml_collections.ConfigDict) -> dict:
  """The metric part of `summary.json` for one set of per-entity total scores."""
  return {
      "threshold_free": threshold_free(names, labels, scores,
                                       sliding_window=config.eval.vus_window),
      "thresholds": thresholded(names, labels, scores, calib_scores, config.threshold),
  }
