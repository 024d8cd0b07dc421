"""Train, score, threshold and report: what `launch.train` and `launch.evaluate` run."""

from collections.abc import Callable
import dataclasses
import json
import pathlib
import time
from typing import Any

import jax
import ml_collections
import numpy as np

from tsad_jax import alarms
from tsad_jax import baselines
from tsad_jax import config_names
from tsad_jax import distributed
from tsad_jax import evaluation
from tsad_jax import models
from tsad_jax import plots
from tsad_jax import runs
from tsad_jax import scoring
from tsad_jax import thresholds
from tsad_jax import train
from tsad_jax.data import load
from tsad_jax.data.prepare import Prepared
from tsad_jax.data.prepare import prepare


@dataclasses.dataclass(frozen=True)
class Setup:
  """Everything built from a config before training or scoring."""

  config: ml_collections.ConfigDict
  prepared: Prepared
  model_lib: object
  model: object


# (config, number of features) -> the starting parameters converted from config.init's checkpoint
ParamsFrom = Callable[[ml_collections.ConfigDict, int], Any]


def check_config(config: ml_collections.ConfigDict) -> None:
  """Refuses unknown method names before any data is loaded or any step is trained."""
  choices = {
      "threshold.methods": (config_names.comma_list(config.threshold.methods), thresholds.REGISTRY),
      "eval.baselines": (config_names.comma_list(config.eval.baselines), baselines.BASELINES),
      "eval.point_rule": ([config.eval.point_rule], scoring.POINT_RULES),
      "train.compute_dtype": ([config.train.compute_dtype], tuple(train.COMPUTE_DTYPES)),
  }
  for field, (given, valid) in choices.items():
    unknown = [name for name in given if name not in valid]
    if unknown:
      raise ValueError(f"config.{field}: unknown {', '.join(map(repr, unknown))}; "
                       f"choose from {', '.join(valid)}.")
  if config.data.get("entities"):
    raise ValueError(f"config.data.entities={config.data.entities!r} asks for one model per "
                     "entity: run it with `python -m launch.train_fleet`. launch.train trains one "
                     "model on config.data.entity.")
  if config.data.window < 2:
    raise ValueError(f"config.data.window must be >= 2, got {config.data.window}.")
  alarms.check(config)
  plots_limit = config.eval.residual_plots
  if isinstance(plots_limit, bool) or not isinstance(plots_limit, int) or plots_limit < 0:
    raise ValueError(f"config.eval.residual_plots={plots_limit!r} must be an integer >= 0 (the "
                     "most residual heatmaps drawn per entity).")


def build(config: ml_collections.ConfigDict) -> Setup:
  """Loads and prepares the data, and builds the model the config names."""
  check_config(config)
  model_lib = models.get(config.model.name)
  prepared = prepare(load(config.data), config.data)
  alarms.check_lengths({e.name: e.parts for e in prepared.dataset.entities}, config)
  model = model_lib.build(config.model, num_features=prepared.num_features,
                          window=config.data.window)
  return Setup(config, prepared, model_lib, model)


def _baselines(setup: Setup, names, labels, test_scaled: ml_collections.ConfigDict | None) -> dict:
  """Each baseline scored like the model: threshold-free figures and at each threshold."""
  config, dataset = setup.config, setup.prepared.dataset
  out = {}
  for name in config_names.comma_list(config.eval.baselines):
    calibrated = [baselines.calibrated(name, entity, config) for entity in dataset.entities]
    out[name] = evaluation.summarize(
        names, labels, [c.test.sum(axis=1) for c in calibrated],
        [c.calibration.sum(axis=1) for c in calibrated], config,
        points_per_day=dataset.points_per_day)
    if test_scaled is not None:
      totals = [baselines.calibrated(name, entity, test_scaled).test.sum(axis=1)
                for entity in dataset.entities]
      out[name]["threshold_free_test_scaled"] = evaluation.threshold_free(
          names, labels, totals, sliding_window=config.eval.vus_window)
  return out


def _test_scaled(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict | None:
  """The config with transductive feature scaling, reported beside a causal one (else None)."""
  if config.eval.feature_scaling != "train":
    return None
  other = ml_collections.ConfigDict(config.to_dict())
  other.eval.feature_scaling = "test"
  return other


def raw_scorer(setup: Setup, params):
  """(series, segment lengths) -> the model's per-timestep scores (or score parts)."""
  scorer = scoring.for_config(setup.model_lib, setup.model, setup.config)
  key = jax.random.fold_in(jax.random.PRNGKey(setup.config.seed), 2)
  return lambda series, lengths: scorer(params, series, lengths, key)


def combine(setup: Setup, parts: np.ndarray, *, reference: np.ndarray) -> np.ndarray:
  """An entity's per-feature scores from its score parts (models scored in parts, see
  models/__init__.py); `reference` holds the parts of its training series."""
  combine_parts = setup.model_lib.HOOKS.combine
  if combine_parts is None:
    return parts
  return combine_parts(parts, reference=reference, model_config=setup.config.model)


def score_and_report(setup: Setup, params, out_dir: pathlib.Path, *,
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
  calibrated = [alarms.calibrate(test, train, config, parts=entity.parts)
                for test, train, entity in zip(test_raw, train_raw, entities, strict=True)]
  scoring_seconds = time.perf_counter() - started

  names = [e.name for e in entities]
  labels = [e.labels for e in entities]
  test_per_feature = [c.test for c in calibrated]
  test_scores = [s.sum(axis=1) for s in test_per_feature]
  calib_scores = [c.calibration.sum(axis=1) for c in calibrated]
  predicted = evaluation.predictions(labels, test_scores, calib_scores, config.threshold)
  alarm_method = evaluation.methods(config.threshold)[0]
  test_scaled = _test_scaled(config)
  summary = {
      "model": config.model.name,
      "dataset": config.data.dataset,
      "entities": names,
      "scoring": {"mode": alarms.mode(config), "alarm_method": alarm_method,
                  "calibration_points": [len(c.calibration) for c in calibrated]},
      **evaluation.summarize(names, labels, test_scores, calib_scores, config,
                             points_per_day=prepared.dataset.points_per_day,
                             predicted=predicted),
  }
  if test_scaled is not None:
    totals = [alarms.calibrate(test, train, test_scaled, parts=entity.parts).test.sum(axis=1)
              for test, train, entity in zip(test_raw, train_raw, entities, strict=True)]
    summary["threshold_free_test_scaled"] = evaluation.threshold_free(
        names, labels, totals, sliding_window=config.eval.vus_window)
  summary["baselines"] = _baselines(setup, names, labels, test_scaled)
  summary["scoring_seconds"] = scoring_seconds
  summary["machine"] = runs.machine()
  explained = evaluation.interpretation(names, test_per_feature, [e.segments for e in entities])
  if explained is not None:
    summary["interpretation"] = explained
  out_dir.mkdir(parents=True, exist_ok=True)
  runs.write_scores(out_dir, names, labels, test_per_feature, prepared.dataset.feature_names,
                    alarms=[preds for _, preds in predicted[alarm_method]])
  if config.eval.plots:
    _plot(setup, out_dir / "plots", names, labels, test_per_feature, summary, history,
          params=params)
  return summary


def _plot(setup, plot_dir, names, labels, per_feature, summary, history, params=None) -> None:
  """Loss, score and feature plots; with `params`, residual heatmaps of models that have them."""
  plot_dir.mkdir(parents=True, exist_ok=True)
  if history:
    plots.loss_curves(history, plot_dir / "loss.png")
  methods = [m for m in summary["thresholds"] if m != evaluation.ORACLE]
  method = methods[0] if methods else evaluation.ORACLE
  per_method = summary["thresholds"][method]
  feature_names = setup.prepared.dataset.feature_names
  thresholds = []
  for name, y, scores in zip(names, labels, per_feature, strict=True):
    figures = per_method.get("per_entity", {}).get(name, per_method["mean"])
    thresholds.append(figures["threshold"])
    plots.score_with_threshold(scores.sum(axis=1), y, figures["threshold"], name=name,
                               method=method, path=plot_dir / f"score_{name}.png")
    plots.feature_heatmap(scores, y, feature_names, name=name,
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


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | pathlib.Path, *,
                       stop_after_steps: int | None = None,
                       params_from: ParamsFrom | None = None) -> pathlib.Path:
  """Trains the configured model in a new (or resumed) run folder, then scores it.

  `params_from` makes the starting parameters from `config.init.torch_checkpoint`
  (`interop.convert.start_params`; launch.train passes it in).

  With several processes (`distributed.initialize`) all train together and
  process 0 alone writes the folder and scores.

  Returns:
    The run folder, `<workdir>/<dataset>/<entity>/<model>/<run_id>/`.
  """
  setup = build(config)
  start_params = initial_params(setup, params_from)
  run_dir = _open_run(workdir, config)
  result = train.fit(config, setup.prepared, run_dir, model_lib=setup.model_lib,
                     model=setup.model, stop_after_steps=stop_after_steps,
                     initial_params=start_params)
  if result.finished and distributed.is_main_process():
    report_trained(setup, result, run_dir)
  return run_dir


def report_trained(setup: Setup, result: train.FitResult, run_dir: pathlib.Path) -> None:
  """Scores a finished training into its run folder, with the training's figures."""
  summary = score_and_report(setup, result.params, run_dir, history=result.history)
  summary["training"] = {
      "steps": result.steps,
      "epochs": len(result.history),
      "best_val_loss": min((h["val_loss"] for h in result.history if "val_loss" in h),
                           default=None),
      "nonfinite_steps": result.nonfinite_steps,
      "seconds": result.seconds,
  }
  runs.write_json(run_dir / "summary.json", summary)


def _open_run(workdir: str | pathlib.Path, config: ml_collections.ConfigDict) -> pathlib.Path:
  """`runs.open_run` on process 0; the other processes get its folder (and run_id)."""
  name = runs.open_run(workdir, config).name if distributed.is_main_process() else ""
  with config.unlocked():
    config.run_id = distributed.broadcast_text(name)
  return runs.run_parent(workdir, config) / config.run_id


def initial_params(setup: Setup, params_from: ParamsFrom | None):
  """Parameters converted from `config.init.torch_checkpoint`, or None for a fresh init."""
  config = setup.config
  if not config.init.torch_checkpoint:
    return None
  if params_from is None:
    raise ValueError(
        f"config.init.torch_checkpoint is {config.init.torch_checkpoint!r}, but the library "
        "reads no torch files: train with `python -m launch.train` (it converts the "
        "checkpoint), or pass params_from=interop.convert.start_params.")
  return params_from(config, setup.prepared.num_features)


def evaluate_run(run_dir: str | pathlib.Path, *, step: int | None = None,
                 overrides: tuple[str, ...] = (),
                 defaults: ml_collections.ConfigDict | None = None) -> tuple[dict, pathlib.Path]:
  """Re-scores a saved run: the best parameters, or those at `step`.

  `overrides` ("model.gamma=0.5", "threshold.pot_q=1e-4") change scoring-only
  fields (runs.is_rescoring_field). `defaults` (configs/common.py's config) fills
  in fields newer than the run. Writes scores, summary.json and the config
  used into `<run_dir>/evaluations/<best|step-N>[+overrides]/`, never over the
  run's own files, and returns (summary, that folder).
  """
  run_dir = pathlib.Path(run_dir)
  config = runs.load_config(run_dir)
  if defaults is not None:
    config = runs.add_missing_fields(config, defaults)
  config = runs.rescoring_config(config, list(overrides))
  setup = build(config)
  params = train.load_params(run_dir, step=step)
  train.check_params_fit(params, setup.model, window=config.data.window,
                         num_features=setup.prepared.num_features, source=str(run_dir))
  out_dir = evaluation_folder(run_dir, step=step, overrides=overrides)
  summary = score_and_report(setup, params, out_dir)
  runs.write_json(out_dir / runs.CONFIG_FILE, json.loads(config.to_json()))
  trained = load_summary(run_dir) if (run_dir / "summary.json").exists() else {}
  if step is None and "training" in trained:  # the same trained parameters
    summary["training"] = trained["training"]
  runs.write_json(out_dir / "summary.json", summary)
  return summary, out_dir


def evaluation_folder(run_dir: pathlib.Path, *, step: int | None = None,
                      overrides=()) -> pathlib.Path:
  """Where `evaluate_run` writes: `<run_dir>/evaluations/<best|step-N>[+overrides]`."""
  name = "+".join(["best" if step is None else f"step-{step}", *sorted(overrides)])
  return pathlib.Path(run_dir) / "evaluations" / name.replace("/", "_")


def same_figures(a: dict, b: dict, *, rtol: float = 1e-5) -> list[str]:
  """Keys of the metric sections where two summaries differ (empty: they agree)."""
  differ = []

  def walk(x, y, path):
    if isinstance(x, dict) and isinstance(y, dict):
      for key in x.keys() | y.keys():
        walk(x.get(key), y.get(key), f"{path}/{key}")
    elif isinstance(x, (int, float)) and isinstance(y, (int, float)):
      if not np.isclose(x, y, rtol=rtol, atol=1e-8, equal_nan=True):
        differ.append(f"{path}: {x} vs {y}")
    elif x != y:
      differ.append(f"{path}: {x!r} vs {y!r}")

  for section in ("threshold_free", "threshold_free_test_scaled", "thresholds", "baselines",
                  "interpretation"):
    walk(a.get(section), b.get(section), section)
  return differ


def load_summary(run_dir: str | pathlib.Path) -> dict:
  return json.loads((pathlib.Path(run_dir) / "summary.json").read_text())


def headline(summary: dict) -> str:
  """A few lines for the terminal: the model's leading metrics beside the baselines, then
  its alarms at each threshold method beside the oracle."""
  keys = ("VUS-PR", "AUC-PR", "VUS-ROC", "Standard-F1", "PA-F1")
  rows = [("model: " + summary["model"], summary["threshold_free"]["mean"])]
  rows += [(f"baseline: {n}", b["threshold_free"]["mean"])
           for n, b in summary.get("baselines", {}).items()]
  lines = [f"scores: {summary['scoring']['mode']}"] if "scoring" in summary else []
  lines += [f"{'':22s}" + "".join(f"{k:>13s}" for k in keys)]
  lines += [f"{n:22s}" + "".join(f"{m[k]:13.4f}" for k in keys) for n, m in rows]
  if "threshold_free_test_scaled" in summary:
    m = summary["threshold_free_test_scaled"]["mean"]
    lines.append(f"{'model, test-scaled':22s}" + "".join(f"{m[k]:13.4f}" for k in keys))
  for method, figures in summary["thresholds"].items():
    m = figures["mean"]
    lines.append(f"threshold {method}: precision {m['precision']:.4f} recall {m['recall']:.4f} "
                 f"F1 {m['F1']:.4f}, flagged {m['flagged']:.4f} of {m['anomaly-share']:.4f} "
                 f"anomalous, events found {m['detected-segments']:.4f}, false alarms "
                 f"{m['false-alarm-events']:.0f} (PA-F1 {m['PA-F1']:.4f}, only beside the above)")
  if "interpretation" in summary:
    m = summary["interpretation"]["mean"]
    lines.append("interpretation: " + " ".join(
        f"{k} {m[k]:.4f}" for k in ("HitRate@100%", "HitRate@150%", "NDCG@100%", "NDCG@150%")
        if k in m))
  return "\n".join(lines)
