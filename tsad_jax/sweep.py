"""Hyper-parameter sweeps: a grid of config overrides, a quick stage, full training of the top-k.

  python -m launch.sweep --config=configs/sweeps/demo_quick.py --workdir=runs

A sweep spec (configs/sweeps/common.py lists its fields) names a base
experiment config, overrides set on every trial, and a grid: field path ->
values, whose every combination is a trial. Trial i is named
`trial-<i>-<8 hex digits of its overrides' hash>`: the same grid always gives
the same names, and a trial's name changes with its overrides.

Stages. With `quick_epochs` > 0 every trial first trains that many epochs (the
quick stage), ranked by `quick_metric`; the best `top_k` then train with the
base's epochs (the full stage), ranked by `metric`. With `quick_epochs` 0 every
trial trains fully. Both rankings go the way `mode` / `quick_mode` says (min or
max); trials whose metric is NaN, missing, or that diverged rank last and never
enter the full stage.
A run that diverges (train.fit's FloatingPointError) gets a `diverged.txt`
and counts as finished, with a NaN metric.

Folders. Every trial is an ordinary run (experiment.train_and_evaluate, with
`config.run_id` = the trial's name), so `launch.evaluate --run=` works on it:

  <workdir>/sweeps/<name>/
    sweep.json        the spec
    quick/<dataset>/<entity>/<model>/trial-<i>-<hash>/    quick-stage runs
    quick/vmapped.json                                   quick trials trained together
    full/<dataset>/<entity>/<model>/trial-<i>-<hash>/     full-stage runs
    results.csv       one row per trial and stage, each stage ranked (full first)
    best.json         the best full-stage trial: its run folder, overrides and metric

Resume. Running a sweep again skips the trials that finished (a run whose
summary.json exists, or one recorded in vmapped.json) and resumes the others
from their checkpoints through `config.run_id`. A finished trial whose saved
config differs from the spec's in a training field goes through
train_and_evaluate again, which refuses it like any changed run; trials
trained together (below) whose recorded config differs train again.

Trials trained together. In the quick stage, trials whose configs agree in
every training field except VMAP_FIELDS (optim.learning_rate,
optim.grad_clip_norm, optim.l2) train in one compiled program, as the members
of the training loop (`train.fit_members`); those three scalars sit in each
trial's optimizer state (optax.inject_hyperparams) instead of being compiled
in. Their data, model shape, seed, batch size, schedule and epochs are shared.
The validation losses equal those of training the trials one after another
(same initial parameters, batches and rng) within float rounding. Such trials
leave no run folder, only their row (run_dir empty) and their losses in
vmapped.json; this needs `quick_metric` best_val_loss and `vmap` True. Any
other field in the grid (model.hidden_size, seed, data.window, ...) splits
trials into groups, each trained together; a group of one trains as an
ordinary run. The full stage always trains trial by trial.
"""

from collections.abc import Callable
import csv
import hashlib
import itertools
import json
import math
import pathlib
from typing import Any
from typing import NamedTuple

import jax.numpy as jnp
import ml_collections
import optax

from tsad_jax import config_names
from tsad_jax import experiment
from tsad_jax import metrics
from tsad_jax import models
from tsad_jax import optim as optim_lib
from tsad_jax import run_setup
from tsad_jax import runs
from tsad_jax import summaries
from tsad_jax import train

QUICK, FULL = "quick", "full"
VAL_LOSS = "best_val_loss"
# Metrics that read the test labels are named with this prefix, so a ranking by them says so.
ORACLE = "oracle:"
MODES = ("min", "max")
# Optimizer scalars that may differ between trials trained together.
VMAP_FIELDS = ("optim.learning_rate", "optim.grad_clip_norm", "optim.l2")
SPEC_FIELDS = ("name", "base", "overrides", "grid", "quick_epochs", "top_k", "metric", "mode",
               "quick_metric", "quick_mode", "vmap")
VMAPPED_FILE = "vmapped.json"


class Trial(NamedTuple):
  index: int
  name: str
  overrides: dict[str, Any]  # field path -> value, sorted by path


class SweepResult(NamedTuple):
  folder: pathlib.Path
  rows: list[dict]  # results.csv's rows, ranked, full stage first
  best: dict | None  # best.json (None until the sweep finished with a finite metric)
  trained: list[str]  # "<stage>/<trial>" trained (or resumed) by this call
  finished: bool  # False when stopped by `stop_after_trials`


# Spec -> trials.


def flatten(tree, prefix: str = "") -> dict[str, Any]:
  """`{"optim": {"learning_rate": x}}` and `{"optim.learning_rate": x}` -> the latter."""
  out = {}
  for key, value in tree.items():
    if isinstance(value, (dict, ml_collections.ConfigDict)):
      out.update(flatten(value, f"{prefix}{key}."))
    else:
      out[f"{prefix}{key}"] = value
  return out


def expand_grid(grid) -> list[dict[str, Any]]:
  """Every combination of a grid's values, the last field (by sorted path) varying fastest.

  Args:
    grid: field path -> non-empty list or tuple of values (nested or dotted).

  Returns:
    One dict of field path -> value per trial; `[{}]` for an empty grid.
  """
  fields = flatten(grid)
  for path, values in fields.items():
    if not isinstance(values, (list, tuple)) or not values:
      raise ValueError(f"sweep.grid.{path}: give a non-empty list or tuple of values, "
                       f"got {values!r}.")
  paths = sorted(fields)
  return [dict(zip(paths, combo, strict=True))
          for combo in itertools.product(*(fields[p] for p in paths))]


def trial_name(index: int, overrides: dict[str, Any]) -> str:
  """`trial-<index>-<hash>`, the hash of the overrides independent of their order."""
  text = json.dumps(overrides, sort_keys=True)
  return f"trial-{index:03d}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"


def make_trials(grid) -> list[Trial]:
  return [Trial(i, trial_name(i, o), o) for i, o in enumerate(expand_grid(grid))]


def _set(config: ml_collections.ConfigDict, path: str, value, *, where: str) -> None:
  if path == "run_id":
    raise ValueError(f"{where}: run_id is set by the sweep (the trial's name).")
  config_names.set_field(config, path, value, where=where, whose="the base config")


def trial_config(spec: ml_collections.ConfigDict, trial: Trial, *,
                 stage: str) -> ml_collections.ConfigDict:
  """The base config with the spec's overrides, the trial's, its stage's epochs and run_id."""
  config = config_names.load(spec.base)
  for path, value in flatten(spec.overrides).items():
    _set(config, path, value, where=f"sweep.overrides.{path}")
  for path, value in trial.overrides.items():
    _set(config, path, value, where=f"sweep.grid.{path}")
  if stage == QUICK:
    config.train.max_epochs = spec.quick_epochs
  config.run_id = trial.name
  return config


def stage_metrics(spec: ml_collections.ConfigDict) -> dict[str, tuple[str, str]]:
  """Stage -> (metric, mode) of each stage the sweep runs."""
  out = {FULL: (spec.metric, spec.mode)}
  if spec.quick_epochs:
    out = {QUICK: (spec.quick_metric or spec.metric, spec.quick_mode or spec.mode), **out}
  return out


def _check_metric(metric: str, mode: str, where: str) -> None:
  if mode not in MODES:
    raise ValueError(f"sweep.{where}mode={mode!r}: say which way is better, min or max.")
  if metric == VAL_LOSS:
    if mode != "min":
      raise ValueError(f"sweep.{where}metric={VAL_LOSS} is a loss: set sweep.{where}mode='min'.")
    return
  if not metric.startswith(ORACLE):
    raise ValueError(
        f"sweep.{where}metric={metric!r} ranks trials by the test series and its labels: rank by "
        f"{VAL_LOSS} (validation data only), or name it {ORACLE}{metric} to choose by test "
        "labels on purpose (an oracle selection, not a result).")
  figure = metric[len(ORACLE):]
  if "/" not in figure and figure not in metrics.THRESHOLD_FREE_KEYS:
    raise ValueError(
        f"sweep.{where}metric={metric!r}: after {ORACLE} use one of "
        f"{', '.join(metrics.THRESHOLD_FREE_KEYS)}, or a path into summary.json such as "
        f"{ORACLE}thresholds/pot/mean/F1.")


def check_spec(spec: ml_collections.ConfigDict) -> list[Trial]:
  """Validates a sweep spec and every trial's config before anything trains.

  Returns:
    The trials, in grid order.

  Raises:
    ValueError naming the spec field at fault: a missing field, an unknown
    base config, a grid or override path the base config lacks, a value of the
    wrong type, an unknown metric or mode, or a trial config that
    run_setup.check_config or the optimizer refuses.
  """
  missing = [f for f in SPEC_FIELDS if f not in spec]
  if missing:
    raise ValueError(f"sweep spec lacks {', '.join(missing)}; start from configs/sweeps/common.py.")
  if not spec.name or "/" in spec.name:
    raise ValueError(f"sweep.name={spec.name!r}: give the sweep a folder name.")
  if spec.quick_epochs < 0 or spec.top_k < 1:
    raise ValueError(f"sweep.quick_epochs must be >= 0 and sweep.top_k >= 1, got "
                     f"{spec.quick_epochs} and {spec.top_k}.")
  for stage, (metric, mode) in stage_metrics(spec).items():
    _check_metric(metric, mode, "quick_" if stage == QUICK else "")
  trials = make_trials(spec.grid)
  for stage, (metric, _) in stage_metrics(spec).items():
    for trial in trials:
      config = trial_config(spec, trial, stage=stage)
      run_setup.check_config(config)
      models.get(config.model.name)
      optim_lib.make_optimizer(config.optim, steps_per_epoch=1, total_steps=1)
      if metric == VAL_LOSS and not config.data.val_fraction:
        raise ValueError(f"{trial.name}: metric {VAL_LOSS} needs config.data.val_fraction > 0.")
  return trials


# Metrics and ranking.


def metric_value(summary: dict, metric: str) -> float:
  """The figure `metric` names in a run's summary.json (NaN when absent or None)."""
  figure = metric.removeprefix(ORACLE)
  if metric == VAL_LOSS:
    path = ["training", VAL_LOSS]
  elif "/" in figure:
    path = figure.split("/")
  else:
    path = ["threshold_free", "mean", figure]
  node = summary
  for part in path:
    if not isinstance(node, dict) or part not in node:
      return float("nan")
    node = node[part]
  return float("nan") if node is None else float(node)


def rank(rows: list[dict], mode: str) -> list[dict]:
  """Rows sorted best first by "value" (`mode` min or max); non-finite last, ties by index."""
  sign = 1.0 if mode == "min" else -1.0
  key = lambda r: (not math.isfinite(r["value"]),
                   sign * r["value"] if math.isfinite(r["value"]) else 0.0, r["index"])
  return [{**row, "rank": i + 1} for i, row in enumerate(sorted(rows, key=key))]


def select_top(ranked: list[dict], k: int) -> list[str]:
  """Names of the best `k` trials with a finite metric."""
  return [r["trial"] for r in ranked if math.isfinite(r["value"])][:k]


# Trials trained together.


def stacked_optimizer(optim: ml_collections.ConfigDict, *, steps_per_epoch: int,
                      total_steps: int) -> optax.GradientTransformation:
  """`optim.make_optimizer` with VMAP_FIELDS as hyper-parameters held in its state.

  The learning rate scales the updates of the same optimizer at rate 1 (every
  schedule is the rate times a function of the step); clipping (a norm of 0,
  meaning none, becomes inf) and L2 decay come first, as in make_optimizer.
  """
  unit = ml_collections.ConfigDict(optim.to_dict())
  unit.learning_rate, unit.grad_clip_norm, unit.l2 = 1.0, 0.0, 0.0
  inner = optim_lib.make_optimizer(unit, steps_per_epoch=steps_per_epoch,
                                   total_steps=total_steps)

  def with_scalars(learning_rate, grad_clip_norm, l2):
    max_norm = jnp.where(grad_clip_norm > 0, grad_clip_norm, jnp.inf)
    return optax.chain(optax.clip_by_global_norm(max_norm), optax.add_decayed_weights(l2),
                       inner, optax.scale(learning_rate))

  return optax.inject_hyperparams(with_scalars)(
      learning_rate=optim.learning_rate, grad_clip_norm=optim.grad_clip_norm, l2=optim.l2)


def group_key(config: ml_collections.ConfigDict) -> str:
  """What trials trained together must share: every training field but VMAP_FIELDS."""
  fields = {k: v for k, v in runs.training_fields(config).items() if k not in VMAP_FIELDS}
  return json.dumps(fields, sort_keys=True)


def vmap_groups(configs: list[ml_collections.ConfigDict]) -> list[list[int]]:
  """Indices of `configs` grouped by `group_key`, in order of first appearance."""
  groups: dict[str, list[int]] = {}
  for i, config in enumerate(configs):
    groups.setdefault(group_key(config), []).append(i)
  return list(groups.values())


def train_together(configs: list[ml_collections.ConfigDict]) -> list[list[dict]]:
  """Trains configs that differ only in VMAP_FIELDS as the members of one training loop.

  Each trial is the run `train.fit` makes of its config (initial parameters,
  batch order, rng and early stopping from the shared seed), without
  checkpoints; the validation losses match training each config alone within
  float rounding.

  Returns:
    Per config, one record per epoch ("epoch", "step", "train_loss",
    "val_loss", ...), the last one with "diverged" if it diverged.
  """
  if len({group_key(c) for c in configs}) != 1:
    raise ValueError(f"train_together: the configs differ in more than {', '.join(VMAP_FIELDS)}.")
  setup = run_setup.build(configs[0])
  prepared = setup.prepared
  if not len(prepared.val_starts):
    raise ValueError("train_together needs validation windows (config.data.val_fraction > 0).")
  members = [train.Member(f"trial {i}", prepared.train, prepared.train_starts,
                          prepared.val_starts, optim=c.optim) for i, c in enumerate(configs)]
  results = train.fit_members(configs[0], members, model_lib=setup.model_lib, model=setup.model,
                              optimizer=stacked_optimizer)
  return [r.history for r in results]


def best_val_loss(history: list[dict]) -> float:
  """The best finite validation loss; NaN when the trial diverged (as a run's diverged.txt)."""
  finite = [h["val_loss"] for h in history if math.isfinite(h["val_loss"])]
  return min(finite) if finite and "diverged" not in history[-1] else float("nan")


# Running a sweep.


def sweep_folder(workdir: str | pathlib.Path, name: str) -> pathlib.Path:
  return pathlib.Path(workdir) / "sweeps" / name


def _row(stage: str, trial: Trial, metric: str, mode: str, value: float, *, status: str,
         how: str, run_dir: str) -> dict:
  return {"stage": stage, "trial": trial.name, "index": trial.index, "metric": metric,
          "mode": mode, "value": value, "status": status, "how": how, "run_dir": run_dir,
          "overrides": trial.overrides}


def _finished(run_dir: pathlib.Path, config: ml_collections.ConfigDict) -> bool:
  """A run is finished when it has summary.json (or diverged.txt) and was trained with `config`."""
  if not (run_dir / "summary.json").exists() and not (run_dir / "diverged.txt").exists():
    return False
  return runs.training_fields(runs.load_config(run_dir)) == runs.training_fields(config)


def _train_run(stage_dir: pathlib.Path, config, run_dir: pathlib.Path) -> None:
  """Trains (or resumes) one trial as an ordinary run; a divergence is recorded, not raised."""
  try:
    experiment.train_and_evaluate(config, stage_dir)
  except FloatingPointError as e:  # diverged: an outcome of the hyper-parameters
    (run_dir / "diverged.txt").write_text(f"{e}\n")


def _run_row(stage: str, trial: Trial, run_dir: pathlib.Path, metric: str, mode: str) -> dict:
  if (run_dir / "summary.json").exists():
    value = metric_value(summaries.load_summary(run_dir), metric)
    status = "ok" if math.isfinite(value) else "no metric"
  else:
    value, status = float("nan"), "diverged"
  return _row(stage, trial, metric, mode, value, status=status, how="run", run_dir=str(run_dir))


def _load_vmapped(path: pathlib.Path) -> dict:
  return json.loads(path.read_text()) if path.exists() else {}


def _vmapped_rows(records: dict, trials: list[Trial], configs, mode: str) -> list[dict] | None:
  """Rows of a group trained together earlier, or None when it must train (again)."""
  rows = []
  for trial, config in zip(trials, configs, strict=True):
    record = records.get(trial.name)
    if record is None or record["config"] != runs.training_fields(config):
      return None
    value = best_val_loss(record["history"])
    rows.append(_row(QUICK, trial, VAL_LOSS, mode, value,
                     status="ok" if math.isfinite(value) else "diverged", how="vmapped",
                     run_dir=""))
  return rows


def _train_group(path: pathlib.Path, trials: list[Trial], configs) -> None:
  """Trains a group together and adds each trial's history to vmapped.json."""
  histories = train_together(configs)
  records = _load_vmapped(path)
  for trial, config, history in zip(trials, configs, histories, strict=True):
    records[trial.name] = {"overrides": trial.overrides, "history": history,
                           "config": runs.training_fields(config)}
  path.parent.mkdir(parents=True, exist_ok=True)
  runs.write_json(path, records)


def run_stage(spec, folder: pathlib.Path, stage: str, trials: list[Trial], *,
              budget: float = math.inf,
              log: Callable[[str], None] = lambda _: None) -> tuple[list[dict], list[str], bool]:
  """Trains the trials of a stage that have not finished, skipping the others.

  Args:
    spec: the sweep spec.
    folder: the sweep's folder; the stage's runs go under `<folder>/<stage>/`.
    stage: QUICK or FULL.
    trials: the stage's trials.
    budget: stop before a trial once this many have trained.
    log: called with one line per trial (or group) trained.

  Returns:
    (rows of the finished trials, "<stage>/<trial>" of those trained now,
    whether every trial finished).
  """
  metric, mode = stage_metrics(spec)[stage]
  stage_dir = folder / stage
  configs = [trial_config(spec, t, stage=stage) for t in trials]
  together = stage == QUICK and spec.vmap and metric == VAL_LOSS
  groups = vmap_groups(configs) if together else [[i] for i in range(len(trials))]
  rows, trained = [], []
  for group in sorted(groups):
    group_trials, group_configs = [trials[i] for i in group], [configs[i] for i in group]
    if len(group) > 1:
      path = stage_dir / VMAPPED_FILE
      if _vmapped_rows(_load_vmapped(path), group_trials, group_configs, mode) is None:
        if len(trained) >= budget:
          return rows, trained, False
        log(f"{stage}: training {', '.join(t.name for t in group_trials)} together")
        _train_group(path, group_trials, group_configs)
        trained += [f"{stage}/{t.name}" for t in group_trials]
      rows += _vmapped_rows(_load_vmapped(path), group_trials, group_configs, mode)
      continue
    (trial,), (config,) = group_trials, group_configs
    run_dir = runs.run_parent(stage_dir, config) / trial.name
    if not _finished(run_dir, config):
      if len(trained) >= budget:
        return rows, trained, False
      log(f"{stage}: training {trial.name} {json.dumps(trial.overrides, sort_keys=True)}")
      _train_run(stage_dir, config, run_dir)
      trained.append(f"{stage}/{trial.name}")
    rows.append(_run_row(stage, trial, run_dir, metric, mode))
  return rows, trained, True


def write_results(path: pathlib.Path, rows: list[dict]) -> None:
  """results.csv: one row per trial and stage, a column per grid field."""
  fields = sorted({k for row in rows for k in row["overrides"]})
  columns = ["stage", "rank", "trial", "metric", "mode", "value", "status", "how", *fields,
             "run_dir"]
  with path.open("w", newline="") as f:
    writer = csv.DictWriter(f, columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
      writer.writerow({**row, **{k: json.dumps(v) for k, v in row["overrides"].items()}})


def best_of(rows: list[dict]) -> dict | None:
  """best.json: the top full-stage row, when its metric is finite."""
  full = [r for r in rows if r["stage"] == FULL]
  if not full or not math.isfinite(full[0]["value"]):
    return None
  top = full[0]
  return {k: top[k] for k in ("trial", "metric", "mode", "value", "run_dir", "overrides")}


def run(spec: ml_collections.ConfigDict, workdir: str | pathlib.Path, *,
        stop_after_trials: int | None = None,
        log: Callable[[str], None] = lambda _: None) -> SweepResult:
  """Runs (or resumes) a sweep: the quick stage, then the full stage of the top-k.

  Args:
    spec: the sweep spec (configs/sweeps/common.py).
    workdir: the sweep goes to `<workdir>/sweeps/<spec.name>/`.
    stop_after_trials: return after training this many trials, as a preempted
      job would (results.csv then holds the trials finished so far, and there
      is no best.json); running again resumes.
    log: called with one line per trial trained.

  Returns:
    A SweepResult.
  """
  trials = check_spec(spec)
  folder = sweep_folder(workdir, spec.name)
  folder.mkdir(parents=True, exist_ok=True)
  runs.write_json(folder / "sweep.json", json.loads(spec.to_json()))
  budget = math.inf if stop_after_trials is None else stop_after_trials
  ranked, trained, finished = {}, [], True
  full_trials = trials
  if spec.quick_epochs:
    rows, trained, finished = run_stage(spec, folder, QUICK, trials, budget=budget, log=log)
    ranked[QUICK] = rank(rows, stage_metrics(spec)[QUICK][1])
    chosen = set(select_top(ranked[QUICK], spec.top_k))
    full_trials = [t for t in trials if t.name in chosen]
  if finished:
    rows, done, finished = run_stage(spec, folder, FULL, full_trials,
                                     budget=budget - len(trained), log=log)
    ranked[FULL], trained = rank(rows, spec.mode), trained + done
  all_rows = ranked.get(FULL, []) + ranked.get(QUICK, [])
  write_results(folder / "results.csv", all_rows)
  best = best_of(all_rows) if finished else None
  if best is not None:
    runs.write_json(folder / "best.json", best)
  return SweepResult(folder, all_rows, best, trained, finished)


def report(result: SweepResult) -> str:
  """A few lines for the terminal: each stage's ranking and the best run."""
  lines = []
  for stage in (FULL, QUICK):
    rows = [r for r in result.rows if r["stage"] == stage]
    if rows:
      lines.append(f"{stage} stage, by {rows[0]['metric']} ({rows[0]['mode']}):")
      lines += [f"  {r['rank']:3d}. {r['trial']}  {r['value']:<11.6g} {r['status']:9s} "
                f"{json.dumps(r['overrides'], sort_keys=True)}" for r in rows]
  if not result.finished:
    lines.append(f"Stopped early; run again to resume ({result.folder}).")
  elif result.best is None:
    lines.append("No trial has a finite metric.")
  else:
    lines.append(f"Best: {result.best['trial']} ({result.best['metric']} "
                 f"{result.best['value']:.6g}), run folder {result.best['run_dir']}")
  lines.append(f"Results: {result.folder / 'results.csv'}")
  return "\n".join(lines)
