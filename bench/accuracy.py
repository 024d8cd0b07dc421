"""Accuracy of every model with its default config on SMD, SMAP and MSL -> docs/RESULTS.md.

  python -m bench.accuracy [--data_root=$TSAD_JAX_DATA_ROOT] [--workdir=runs/bench]
      [--jobs=smd_omni,smd_mtadgat,...] [--results_dir=docs/results] [--out=docs/RESULTS.md]

Each job is a config in configs/ (or one with some model fields changed,
VARIANTS) run on every SMD machine found under the data root (or on the whole
spacecraft), or a sweep in configs/sweeps/ run per machine whose best run (by
the sweep's own metric, never the test labels) stands for the job (SWEEPS). A
job's run id is `bench-<hash of the
config fields training depends on>`, so a benchmark that is stopped and
started again resumes its unfinished runs and reuses its finished ones (also
those saved before a field was added to the library, when that field's
default is the job's value: `finished_run`); a change to scoring-only fields
(runs.is_rescoring_field) re-scores finished runs instead of retraining them.
When every run of a job has finished, its figures go to
`<results_dir>/<job>.json` (the run folders hold gigabytes of checkpoints and
scores and are not kept); the report is written
from every job in `results_dir`, so running some jobs updates their rows and
keeps the others'. `--report_only` only rewrites the report.
"""

import hashlib
import json
import os
import pathlib

from absl import app
from absl import flags
from absl import logging
import ml_collections
import numpy as np

from bench import report
from configs import common
from tsad_jax import config_names
from tsad_jax import experiment
from tsad_jax import metric_summary
from tsad_jax import runs
from tsad_jax import summaries
from tsad_jax import sweep
from tsad_jax import thresholds as thresholds_lib
from tsad_jax.data import DATA_ROOT_ENV
from tsad_jax.data import smap_msl
from tsad_jax.data import smd

# config module -> the data set it runs on
JOBS = {
    "smd_omni": "smd",
    "smd_transformer": "smd",
    "smap_omni": "smap",
    "msl_omni": "msl",
    "smd_mtadgat": "smd",
    "smap_mtadgat": "smap",
    "msl_mtadgat": "msl",
    "smd_mscred": "smd",
    "smd_sdmae": "smd",
    "smd_sdmae_cnn_first": "smd",
    "smd_sdmae_patch_cnn": "smd",
    "smd_sdmae_patch_cnn_swept": "smd",
    "smd_lstmae_clf": "smd",
    "smd_lstmae_pred": "smd",
}
# Jobs that are another job's config with some model fields changed.
VARIANTS = {
    "smd_sdmae_cnn_first": ("smd_sdmae", {"patchify_mode": "cnn_first"}),
    "smd_sdmae_patch_cnn": ("smd_sdmae", {"patchify_mode": "patch_cnn"}),
}
# Jobs whose run on an entity is the best run of configs/sweeps/<module>.py's sweep for it.
SWEEPS = {"smd_sdmae_patch_cnn_swept": "smd_sdmae"}

_DATA_ROOT = flags.DEFINE_string("data_root", os.environ.get(DATA_ROOT_ENV, ""),
                                 "Folder holding ServerMachineDataset/ and SMAP_MSL/.")
_WORKDIR = flags.DEFINE_string("workdir", "runs/bench", "Folder the benchmark's runs go under.")
_JOBS = flags.DEFINE_list("jobs", list(JOBS), f"Jobs to run, from {', '.join(JOBS)}.")
_OUT = flags.DEFINE_string("out", "docs/RESULTS.md", "Where the report goes.")
_RESULTS_DIR = flags.DEFINE_string("results_dir", "docs/results",
                                   "Where each finished job's figures are kept, one JSON a job.")
_REPORT_ONLY = flags.DEFINE_bool("report_only", False, "Only write the report of finished runs.")


def data_folder(dataset: str) -> pathlib.Path:
  folder = smd.FOLDER if dataset == "smd" else smap_msl.FOLDER
  path = pathlib.Path(_DATA_ROOT.value) / folder
  if not path.is_dir():
    raise FileNotFoundError(f"{path} does not exist: pass --data_root=<folder holding {folder}> "
                            f"or export {DATA_ROOT_ENV}.")
  return path


def entities(dataset: str) -> list[str]:
  if dataset == "smd":
    return smd.machines(data_folder("smd"))
  return ["all"]


def with_run_id(config):
  """Sets run_id to `bench-<hash of the fields training depends on>`."""
  trained_by = json.dumps(runs.training_fields(config), sort_keys=True)
  config.run_id = f"bench-{hashlib.sha1(trained_by.encode()).hexdigest()[:10]}"
  return config


def job_config(job: str, entity: str):
  module, model_fields = VARIANTS.get(job, (job, {}))
  config = config_names.load(f"{module}:{entity}")
  config.model.update(model_fields)
  config.data.root = str(data_folder(JOBS[job]))
  config.train.progress_bar = False
  return with_run_id(config)


def finished_run(config) -> pathlib.Path:
  """The job's run folder: `config.run_id`'s, or an older finished run trained the same way.

  A run saved before a field was added to the library has another id (the id
  hashes every training field). It counts as the job's when, with the fields
  it lacks at their library defaults (configs.common.defaults: the behaviour
  it was trained with), its training fields are the job's.
  """
  parent = runs.run_parent(_WORKDIR.value, config)
  own = parent / config.run_id
  if (own / "summary.json").exists():
    return own
  wanted = runs.training_fields(config)
  defaults = common.defaults(config.model.name)
  for summary in sorted(parent.glob("*/summary.json")):
    saved = runs.add_missing_fields(runs.load_config(summary.parent), defaults)
    if runs.training_fields(saved) == wanted:
      return summary.parent
  return own


def sweep_spec(job: str, entity: str) -> ml_collections.ConfigDict:
  """The sweep of a SWEEPS job on `entity`, reading the benchmark's data root."""
  spec = config_names.load(f"sweeps.{SWEEPS[job]}:{entity}")
  spec.overrides = ml_collections.ConfigDict(
      {**sweep.flatten(spec.overrides), "data.root": str(data_folder(JOBS[job]))},
      allow_dotted_keys=True)
  return spec


def swept_run(job: str, entity: str) -> tuple[pathlib.Path, ml_collections.ConfigDict | None]:
  """(the sweep's best run, its trial's config now), running or resuming the sweep if need be.

  Before the sweep has finished: (its folder, which holds no summary.json, None).
  """
  spec = sweep_spec(job, entity)
  if not _REPORT_ONLY.value:
    print(f"[{job} {entity}] sweep {spec.name}", flush=True)
    sweep.run(spec, _WORKDIR.value, log=lambda line: print(f"  {line}", flush=True))
  best_file = sweep.sweep_folder(_WORKDIR.value, spec.name) / "best.json"
  if not best_file.exists():
    return best_file.parent, None
  best = json.loads(best_file.read_text())
  trial = next(t for t in sweep.make_trials(spec.grid) if t.name == best["trial"])
  return pathlib.Path(best["run_dir"]), sweep.trial_config(spec, trial, stage=sweep.FULL)


def run_job(job: str, entity: str) -> pathlib.Path:
  """The folder with `job`'s summary.json and scores.npz on `entity`.

  That is the run itself (`finished_run`, or a SWEEPS job's best run), trained
  (or resumed) if need be; or, when the job's scoring-only fields changed since
  the run finished, its re-scoring in `<run>/evaluations/best+<changes>/` (made
  if need be): no retraining.
  """
  if job in SWEEPS:
    run_dir, config = swept_run(job, entity)
    if config is None:
      return run_dir
  else:
    config = job_config(job, entity)
    run_dir = finished_run(config)
    if not (run_dir / "summary.json").exists():
      if not _REPORT_ONLY.value:
        print(f"[{job} {entity}] training into {run_dir}", flush=True)
        experiment.train_and_evaluate(config, _WORKDIR.value)
      return run_dir
  saved = runs.add_missing_fields(runs.load_config(run_dir), config)  # fields newer than the run
  overrides = runs.rescoring_overrides(saved, config)
  out_dir = experiment.evaluation_folder(run_dir, overrides=overrides) if overrides else run_dir
  if not (out_dir / "summary.json").exists() and not _REPORT_ONLY.value:
    print(f"[{job} {entity}] re-scoring {run_dir} with {' '.join(overrides)}", flush=True)
    experiment.evaluate_run(run_dir, overrides=overrides, defaults=config)
  return out_dir


def pooled(run_dirs: list[pathlib.Path], vus_window: int) -> dict:
  """Threshold-free figures on all entities' test scores together, and the alarms' and the
  oracle's thresholded figures from every entity's own predictions."""
  labels, scores, alarms, run_summaries = [], [], [], []
  for run_dir in run_dirs:
    with np.load(run_dir / "scores.npz") as arrays:
      names = sorted(k[:-len("/score")] for k in arrays if k.endswith("/score"))
      labels += [arrays[f"{n}/label"] for n in names]
      scores += [arrays[f"{n}/score"] for n in names]
      alarms += [arrays[f"{n}/alarm"] for n in names]
    run_summaries.append(summaries.load_summary(run_dir))
  figures = metric_summary.threshold_free(["all"], [np.concatenate(labels)],
                                          [np.concatenate(scores)],
                                          sliding_window=vus_window)["pooled"]
  oracle_thresholds = [s["thresholds"][metric_summary.ORACLE]["mean"]["threshold"]
                       for s in run_summaries]
  oracle = [thresholds_lib.predict(s, threshold)
            for s, threshold in zip(scores, oracle_thresholds, strict=True)]
  for name, preds in ((report.ALARM, alarms), (metric_summary.ORACLE, oracle)):
    counts = metric_summary.pooled_counts(labels, preds)
    for key in report.POOLED_KEYS:
      figures[f"{name}/{key}"] = counts[key]
  return figures


def job_result(job: str, dataset: str, run_dirs: list[pathlib.Path]) -> report.JobResult | None:
  """The report's view of a job's finished runs (None when none has finished)."""
  finished = [d for d in run_dirs if (d / "summary.json").exists()]
  if not finished:
    return None
  by_entity = {}
  for run_dir in finished:
    summary = summaries.load_summary(run_dir)
    by_entity["+".join(summary["entities"])] = summary
  vus_window = runs.load_config(finished[0]).eval.vus_window
  return report.JobResult(job=job, dataset=dataset, summaries=by_entity,
                          pooled=pooled(finished, vus_window) if len(finished) > 1 else None)


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  unknown = [job for job in _JOBS.value if job not in JOBS]
  if unknown:
    raise app.UsageError(f"Unknown jobs {unknown}; choose from {', '.join(JOBS)}.")
  results_dir = pathlib.Path(_RESULTS_DIR.value)
  for job in _JOBS.value:
    if _REPORT_ONLY.value:
      break
    run_dirs = [run_job(job, entity) for entity in entities(JOBS[job])]
    result = job_result(job, JOBS[job], run_dirs)
    if result is not None and len(result.summaries) == len(run_dirs):
      report.save(result, results_dir)
  results = report.load_all(results_dir)
  out = pathlib.Path(_OUT.value)
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(report.markdown(results, machine=report.machines(results)))
  print(f"Report written to {out} from {len(results)} jobs in {results_dir}")


if __name__ == "__main__":
  app.run(main)
