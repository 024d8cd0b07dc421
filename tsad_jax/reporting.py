"""Scoring a trained model and writing what a person reads: scores, alarms and metrics beside
the baselines (summary.json, scores files) and the plots."""

import pathlib
import time

import jax
import ml_collections
import numpy as np

from tsad_jax import alarms
from tsad_jax import baselines
from tsad_jax import config_names
from tsad_jax import metric_summary
from tsad_jax import plots
from tsad_jax import run_setup
from tsad_jax import runs
from tsad_jax import scoring


def _baselines(setup: run_setup.Setup, names, labels,
               test_scaled: ml_collections.ConfigDict | None) -> dict:
  """Each baseline scored like the model: threshold-free figures and at each threshold."""
  config, dataset = setup.config, setup.prepared.dataset
  out = {}
  for name in config_names.comma_list(config.eval.baselines):
    calibrated = [baselines.calibrated(name, entity, config) for entity in dataset.entities]
    out[name] = metric_summary.summarize(
        names, labels, [c.test.sum(axis=1) for c in calibrated],
        [c.calibration.sum(axis=1) for c in calibrated], config,
        points_per_day=dataset.points_per_day)
    if test_scaled is not None:
      totals = [baselines.calibrated(name, entity, test_scaled).test.sum(axis=1)
                for entity in dataset.entities]
      out[name]["threshold_free_test_scaled"] = metric_summary.threshold_free(
          names, labels, totals, sliding_window=config.eval.vus_window)
  return out


def _test_scaled(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict | None:
  """The config with transductive feature scaling, reported beside a causal one (else None)."""
  if config.eval.feature_scaling != "train":
    return None
  other = ml_collections.ConfigDict(config.to_dict())
  other.eval.feature_scaling = "test"
  return other


def raw_scorer(setup: run_setup.Setup, params):
  """(series, segment lengths) -> the model's per-timestep scores (or score parts)."""
  scorer = scoring.for_config(setup.model_lib, setup.model, setup.config)
  key = jax.random.fold_in(jax.random.PRNGKey(setup.config.seed), 2)
  return lambda series, lengths: scorer(params, series, lengths, key)


def combine(setup: run_setup.Setup, parts: np.ndarray, *, reference: np.ndarray) -> np.ndarray:
  """An entity's per-feature scores from its score parts (models scored in parts, see
  models/__init__.py); `reference` holds the parts of its training series."""
  return setup.model_lib.HOOKS.per_feature(parts, reference=reference,
                                           model_config=setup.config.model)


def score_and_report(setup: run_setup.Setup, params, out_dir: pathlib.Path, *,
                     history: list[dict] | None = None) -> dict:
  """Scores train and test, writes scores, summary.json and plots into `out_dir`."""
  config, prepared = setup.config, setup.prepared
  started = time.perf_counter()
  score = raw_scorer(setup, params)
  train_parts = prepared.split_train(score(prepared.train, prepared.train_lengths))
  test_raw = [combine(setup, test, reference=train) for test, train in zip(
      prepared.split_test(score(prepared.test, prepared.test_lengths)), train_parts, strict=True)]
  train_raw = [combine(setup, train, reference=train) for train in train_parts]
  entities = prepared.dataset.entities
  calibrated = [alarms.calibrate(test, train, config, parts=entity.parts,
                                 test_parts=entity.test_parts)
                for test, train, entity in zip(test_raw, train_raw, entities, strict=True)]
  scoring_seconds = time.perf_counter() - started

  names = [e.name for e in entities]
  labels = [e.labels for e in entities]
  test_per_feature = [c.test for c in calibrated]
  test_scores = [s.sum(axis=1) for s in test_per_feature]
  calib_scores = [c.calibration.sum(axis=1) for c in calibrated]
  predicted = metric_summary.predictions(labels, test_scores, calib_scores, config.threshold)
  alarm_method = metric_summary.methods(config.threshold)[0]
  summary = {
      "model": config.model.name,
      "dataset": config.data.dataset,
      "entities": names,
      "scoring": {"mode": alarms.mode(config), "alarm_method": alarm_method,
                  "calibration_points": [len(c.calibration) for c in calibrated]},
  }
  points_per_day = prepared.dataset.points_per_day
  if any(y is None for y in labels):
    summary["labels"] = "none given: scores, thresholds and alarms only, no metrics"
    summary["alarms"] = metric_summary.alarms_only(names, predicted,
                                                   points_per_day=points_per_day)
  else:
    summary.update(metric_summary.summarize(names, labels, test_scores, calib_scores, config,
                                            points_per_day=points_per_day, predicted=predicted))
    test_scaled = _test_scaled(config)
    if test_scaled is not None:
      totals = [alarms.calibrate(test, train, test_scaled, parts=entity.parts,
                                 test_parts=entity.test_parts).test.sum(axis=1)
                for test, train, entity in zip(test_raw, train_raw, entities, strict=True)]
      summary["threshold_free_test_scaled"] = metric_summary.threshold_free(
          names, labels, totals, sliding_window=config.eval.vus_window)
    summary["baselines"] = _baselines(setup, names, labels, test_scaled)
    explained = metric_summary.interpretation(names, test_per_feature,
                                              [e.segments for e in entities])
    if explained is not None:
      summary["interpretation"] = explained
  summary["scoring_seconds"] = scoring_seconds
  summary["machine"] = runs.machine()
  out_dir.mkdir(parents=True, exist_ok=True)
  runs.write_scores(out_dir, names, labels, test_per_feature, prepared.dataset.feature_names,
                    alarms=[preds for _, preds in predicted[alarm_method]],
                    thresholds=[np.broadcast_to(level, preds.shape)
                                for level, preds in predicted[alarm_method]])
  if config.eval.plots:
    _plot(setup, out_dir / "plots", names, labels, test_per_feature, summary, history,
          params=params)
  return summary


def _plot(setup, plot_dir, names, labels, per_feature, summary, history, params=None) -> None:
  """Loss, score and feature plots; with `params`, residual heatmaps of models that have them."""
  plot_dir.mkdir(parents=True, exist_ok=True)
  if history:
    plots.loss_curves(history, plot_dir / "loss.png")
  sections = summary.get("thresholds") or summary["alarms"]
  methods = [m for m in sections if m != metric_summary.ORACLE]
  method = methods[0] if methods else metric_summary.ORACLE
  per_method = sections[method]
  feature_names = setup.prepared.dataset.feature_names
  thresholds = []
  for name, y, scores in zip(names, labels, per_feature, strict=True):
    figures = per_method.get("per_entity", {}).get(name, per_method["mean"])
    thresholds.append(figures["threshold"])
    plots.score_with_threshold(scores.sum(axis=1), y, figures["threshold"], name=name,
                               method=method, path=plot_dir / f"score_{name}.png")
    strip = np.zeros(len(scores), np.uint8) if y is None else y  # unlabeled: an empty strip
    plots.feature_heatmap(scores, strip, feature_names, name=name,
                          path=plot_dir / f"features_{name}.png")
  if params is not None and setup.model_lib.HOOKS.residual_matrices is not None:
    _residual_plots(setup, params, plot_dir, names, per_feature, thresholds)


def _residual_plots(setup, params, plot_dir, names, per_feature, thresholds) -> None:
  """One residual heatmap per detected segment (MSCRED's root-cause view).

  For each entity, the segments above its threshold (at most
  `config.eval.residual_plots`, the highest-peaking first) get the residual
  matrix of the window ending at the segment's highest-scoring point.
  """
  limit = setup.config.eval.residual_plots
  key = jax.random.fold_in(jax.random.PRNGKey(setup.config.seed), 2)
  residual_fn = jax.jit(
      lambda p, w: setup.model_lib.HOOKS.residual_matrices(setup.model, p, w, rng=key))
  window, offset = setup.config.data.window, 0
  feature_names = setup.prepared.dataset.feature_names
  for name, scores, threshold in zip(names, per_feature, thresholds, strict=True):
    detected = plots.top_detected_segments(scores.sum(axis=1), threshold, limit=limit)
    if detected:
      ends = [offset + max(peak, window - 1) for _, peak in detected]  # earliest: 1st window
      batch = np.stack([setup.prepared.test[end - window + 1:end + 1] for end in ends])
      # Padded to `limit` windows, so every entity reuses one compiled function.
      matrices = np.asarray(residual_fn(params, np.resize(batch, (limit,) + batch.shape[1:])))
      for (segment, peak), matrix in zip(detected, matrices, strict=False):
        plots.residual_heatmap(
            matrix, feature_names, name=name, segment=segment, peak=peak,
            path=plot_dir / f"residual_{name}_{segment.start}-{segment.end}.png")
    offset += len(scores)
