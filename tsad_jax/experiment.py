"""The two workflows the launchers run: train and score a run (`launch.train`), re-score a
saved one (`launch.evaluate`)."""

import json
import pathlib

import ml_collections

from tsad_jax import distributed
from tsad_jax import report_page
from tsad_jax import reporting
from tsad_jax import run_setup
from tsad_jax import runs
from tsad_jax import summaries
from tsad_jax import train


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | pathlib.Path, *,
                       stop_after_steps: int | None = None,
                       params_from: run_setup.ParamsFrom | None = None,
                       new_named: bool = True) -> pathlib.Path:
  """Trains the configured model in a new (or resumed) run folder, then scores it.

  `params_from` makes the starting parameters from `config.init.torch_checkpoint`
  (`interop.convert.start_params`; launch.train passes it in). `new_named`: as
  `runs.open_run`.

  With several processes (`distributed.initialize`) all train together and
  process 0 alone writes the folder and scores.

  Returns:
    The run folder, `<workdir>/<dataset>/<entity>/<model>/<run_id>/`.
  """
  setup = run_setup.build(config)
  start_params = run_setup.initial_params(setup, params_from)
  run_dir = _open_run(workdir, config, new_named=new_named)
  result = train.fit(config, setup.prepared, run_dir, model_lib=setup.model_lib,
                     model=setup.model, stop_after_steps=stop_after_steps,
                     initial_params=start_params)
  if result.finished and distributed.is_main_process():
    report_trained(setup, result, run_dir)
  return run_dir


def report_trained(setup: run_setup.Setup, result: train.FitResult, run_dir: pathlib.Path) -> None:
  """Scores a finished training into its run folder, with the training's figures."""
  summary = reporting.score_and_report(setup, result.params, run_dir, history=result.history)
  summary["training"] = {
      "steps": result.steps,
      "epochs": len(result.history),
      "best_val_loss": min((h["val_loss"] for h in result.history if "val_loss" in h),
                           default=None),
      "nonfinite_steps": result.nonfinite_steps,
      "seconds": result.seconds,
  }
  runs.write_json(run_dir / "summary.json", summary)
  if setup.config.eval.plots:
    report_page.run_page(run_dir)


def _open_run(workdir: str | pathlib.Path, config: ml_collections.ConfigDict, *,
              new_named: bool) -> pathlib.Path:
  """`runs.open_run` on process 0; the other processes get its folder (and run_id)."""
  name = (runs.open_run(workdir, config, new_named=new_named).name
          if distributed.is_main_process() else "")
  with config.unlocked():
    config.run_id = distributed.broadcast_text(name)
  return runs.run_parent(workdir, config) / config.run_id


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
  setup = run_setup.build(config)
  params = train.load_params(run_dir, step=step)
  train.check_params_fit(params, setup.model, window=config.data.window,
                         num_features=setup.prepared.num_features, source=str(run_dir))
  out_dir = evaluation_folder(run_dir, step=step, overrides=overrides)
  summary = reporting.score_and_report(setup, params, out_dir)
  runs.write_json(out_dir / runs.CONFIG_FILE, json.loads(config.to_json()))
  trained = summaries.load_summary(run_dir) if (run_dir / "summary.json").exists() else {}
  if step is None and "training" in trained:  # the same trained parameters
    summary["training"] = trained["training"]
  runs.write_json(out_dir / "summary.json", summary)
  if config.eval.plots:
    report_page.run_page(out_dir)
  return summary, out_dir


def evaluation_folder(run_dir: pathlib.Path, *, step: int | None = None,
                      overrides=()) -> pathlib.Path:
  """Where `evaluate_run` writes: `<run_dir>/evaluations/<best|step-N>[+overrides]`."""
  name = "+".join(["best" if step is None else f"step-{step}", *sorted(overrides)])
  return pathlib.Path(run_dir) / "evaluations" / name.replace("/", "_")
