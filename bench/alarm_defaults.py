"""The default alarm pipeline, chosen on training data only: anomalies injected into held-out data.

  python -m bench.alarm_defaults [--workdir=runs/bench] [--from_jobs=smd_omni,...]
      [--report=docs/alarm_defaults.md]

For every finished SMD run of the accuracy benchmark's jobs (`bench.accuracy`),
and for the `zscore` and `pca` baselines on the same machines, the held-out
validation tail of the training series (never trained on) is cut into two
halves. Each half in turn calibrates, and a copy of the other half gets the
synthetic generator's anomalies (`synthetic.inject`: spikes, level shifts,
drifts, frequency changes, correlation breaks, noise bursts, about a tenth of
the points, sized by each feature's spread in the model's fitting data). The
first copy of each half also gets a level shift that lasts to its end, labelled
only for as long as a passing shift (`synthetic.inject`'s `lasting_shift`):
servers get reconfigured, and a detector should say so once, then take the new
level as normal, not flood (which Siffer et al.'s DSPOT does; see
`threshold.dspot_relearn`). The model scores that copy, and every candidate
(smoothing x scaling floor x aggregation x threshold method) turns the scores
into alarms, which are compared with the injected labels. Nothing here reads a
test series or a test label. The streaming thresholds (SPOT, DSPOT: a GPD refit
per peak) are tried on the pipelines that did best with the one-threshold
methods.

The report ranks the candidates by their mean alarm score over every run
(models and baselines weigh alike, so does every entity) and says which one
configs/common.py takes. The alarm score is the point F1 of the alarms times
the share of alarm events (runs of alarmed points) that lie mostly inside an
injected anomaly: users act on alarm events, so a pipeline loses when it
splits its alarms into many short false ones, or floods (one long event,
mostly normal points). A second table shows how stable the default threshold
is as the calibration part grows: the spread of the thresholds fitted on
disjoint stretches of each training series' scores.
"""

import dataclasses
import itertools
import json
import math
import pathlib

from absl import app
from absl import flags
from absl import logging
import ml_collections
import numpy as np

from bench import accuracy
from configs import common
from tsad_jax import alarms
from tsad_jax import baselines
from tsad_jax import data
from tsad_jax import feature_scaling
from tsad_jax import metric_summary
from tsad_jax import metrics
from tsad_jax import reporting
from tsad_jax import run_setup
from tsad_jax import runs
from tsad_jax import thresholds
from tsad_jax import train
from tsad_jax.data import synthetic
from tsad_jax.metrics import segments

_FROM_JOBS = flags.DEFINE_list("from_jobs", [j for j, d in accuracy.JOBS.items()
                                              if d == "smd" and j not in accuracy.SWEEPS],
                          "Accuracy-benchmark jobs whose finished runs are read.")
_REPORT = flags.DEFINE_string("report", "docs/alarm_defaults.md", "Where the report goes.")
_COPIES = flags.DEFINE_integer("copies", 3, "Injected copies of each half.")
_CACHE = flags.DEFINE_string("cache", "runs/alarm_defaults",
                             "Where each run's held-out and injected scores are cached.")

SEED = 0
SMOOTHINGS = (("none", {}), ("ewma", {"smoothing_alpha": 0.3}), ("ewma", {"smoothing_alpha": 0.1}),
              ("gaussian", {"smoothing_sigma": 2.0}), ("gaussian", {"smoothing_sigma": 5.0}))
FLOORS = (0.01, 0.1, 1.0)
AGGREGATIONS = feature_scaling.AGGREGATIONS
METHODS = (("pot", {"pot_q": 1e-1, "pot_level": 0.8}), ("pot", {"pot_q": 5e-2, "pot_level": 0.9}),
           ("pot", {"pot_q": 1e-2, "pot_level": 0.95}),
           ("pot", {"pot_q": 1e-3}), ("pot", {"pot_q": 1e-4}),
           ("spot", {"pot_q": 5e-2, "pot_level": 0.9}),
           ("spot", {"pot_q": 1e-2, "pot_level": 0.95}),
           ("dspot", {"pot_q": 5e-2, "pot_level": 0.9, "dspot_depth": 10, "dspot_relearn": 0}),
           ("dspot", {"pot_q": 5e-2, "pot_level": 0.9, "dspot_depth": 10, "dspot_relearn": 30}),
           ("dspot", {"pot_q": 1e-2, "pot_level": 0.95, "dspot_depth": 100, "dspot_relearn": 0}),
           ("dspot", {"pot_q": 1e-2, "pot_level": 0.95, "dspot_depth": 100, "dspot_relearn": 30}),
           ("dspot", {"pot_q": 1e-2, "pot_level": 0.95, "dspot_depth": 100, "dspot_relearn": 100}),
           ("percentile", {"anomaly_ratio": 0.5}), ("percentile", {"anomaly_ratio": 2.0}),
           ("percentile", {"anomaly_ratio": 5.0}), ("percentile", {"anomaly_ratio": 10.0}),
           ("tail_p", {"tail_probability": 1e-2}), ("tail_p", {"tail_probability": 1e-4}),
           ("tail_p", {"tail_probability": 1e-8}))
SIZES = (250, 500, 1000, 2000, 4000)
STREAMING = ("spot", "dspot")
STREAMING_PIPELINES = 3  # the best pipelines (by the one-threshold methods) streaming runs on
INJECTIONS = "lasting-shift"  # names the injections in cache files, so older caches are not read


@dataclasses.dataclass(frozen=True)
class Candidate:
  smoothing: str
  smoothing_options: tuple
  floor: float
  aggregation: str
  method: str
  method_options: tuple

  def fields(self) -> dict:
    """The config fields (eval.*, threshold.*) this candidate sets."""
    out = {"eval.smoothing": self.smoothing, "eval.scaling_floor": self.floor,
           "eval.aggregation": self.aggregation, "threshold.methods": self.method}
    out.update({f"eval.{k}": v for k, v in self.smoothing_options})
    out.update({f"threshold.{k}": v for k, v in self.method_options})
    return out

  def name(self) -> str:
    return " ".join(f"{k}={v}" for k, v in self.fields().items())

  def pipeline(self) -> str:
    """The candidate's scoring pipeline (all but the threshold method)."""
    return " ".join(f"{k}={v}" for k, v in self.fields().items() if k.startswith("eval."))


def candidates() -> list[Candidate]:
  out = []
  for (smooth, smooth_options), floor, aggregation, (method, method_options) in itertools.product(
      SMOOTHINGS, FLOORS, AGGREGATIONS, METHODS):
    if method == "tail_p" and aggregation != "tail_p":
      continue
    out.append(Candidate(smooth, tuple(sorted(smooth_options.items())), floor, aggregation,
                         method, tuple(sorted(method_options.items()))))
  return out


def apply(config: ml_collections.ConfigDict, fields: dict) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict(config.to_dict())
  for field, value in fields.items():
    section, name = field.split(".")
    config[section][name] = value
  return config


@dataclasses.dataclass(frozen=True)
class Folds:
  """One run's scores for the selection: the clean training scores and injected halves.

  Attributes:
    name: "<job>/<entity>" or "<baseline>/<entity>".
    train: (T, D) per-feature scores of the whole training series.
    halves: the two halves of the held-out tail, as (start, end) into `train`.
    injected: per half, the (scores, labels) of each injected copy of it.
  """

  name: str
  train: np.ndarray
  halves: tuple[tuple[int, int], tuple[int, int]]
  injected: tuple[list[tuple[np.ndarray, np.ndarray]], list[tuple[np.ndarray, np.ndarray]]]


def _halves(config, train_length: int) -> tuple[tuple[int, int], tuple[int, int]]:
  rows = alarms.calibration_rows((train_length,), config)
  start, end = int(rows[0]), int(rows[-1]) + 1
  middle = end - len(rows) // 2
  return (start, middle), (middle, end)


def _injected_copies(series: np.ndarray, half: tuple[int, int], spread: np.ndarray,
                     rng: np.random.Generator, copies: int) -> list[synthetic.Injected]:
  """`copies` injected copies of series[start:end]; the first also shifts its level for good."""
  start, end = half
  num = max(2, (end - start) // 200)  # about the generator's density of segments
  return [synthetic.inject(series[start:end], rng=rng, num_anomalies=num, spread=spread,
                           lasting_shift=copy == 0)
          for copy in range(copies)]


def model_folds(job: str, entity: str, copies: int) -> Folds | None:
  """The folds of `job`'s finished run on `entity` (None when it has not finished)."""
  wanted = accuracy.job_config(job, entity)
  run_dir = accuracy.finished_run(wanted)
  if not (run_dir / "summary.json").exists():
    return None
  if wanted.data.dataset != "smd":
    raise ValueError(f"{job}: the selection reads SMD runs (one training series a machine).")
  config = runs.add_missing_fields(runs.load_config(run_dir), wanted)  # trained as saved
  setup = run_setup.build(config)
  params = train.load_params(run_dir)
  score = reporting.raw_scorer(setup, params)
  series = setup.prepared.train  # one entity: SMD machines and whole spacecraft are
  parts = score(series, [len(series)])
  window = config.data.window
  halves = _halves(wanted, len(series))  # the held-out tail, whatever the run calibrated on
  fit_end = halves[0][0]
  rng = np.random.default_rng(SEED)
  injected = []
  for start, end in halves:
    copies_of_half = []
    for copy in _injected_copies(series, (start, end), series[:fit_end].std(axis=0), rng,
                                 copies):
      context = np.concatenate([series[start - window + 1:start], copy.series])
      scored = score(context.astype(np.float32), [len(context)])[window - 1:]
      copies_of_half.append((reporting.combine(setup, scored, reference=parts), copy.labels))
    injected.append(copies_of_half)
  return Folds(f"{job}/{entity}", reporting.combine(setup, parts, reference=parts), halves,
               tuple(injected))


def baseline_folds(name: str, entity, config, copies: int) -> Folds:
  """The folds of baseline `name` on one entity's raw series."""
  train_series = np.asarray(entity.train, np.float64)
  halves = _halves(config, len(train_series))
  fit_part = train_series[:halves[0][0]]
  options = {"variance": config.eval.pca_variance} if name == "pca" else {}
  score = baselines.BASELINES[name](fit_part, **options)
  rng = np.random.default_rng(SEED)
  injected = tuple(
      [(score(copy.series), copy.labels)
       for copy in _injected_copies(train_series, half, fit_part.std(axis=0), rng, copies)]
      for half in halves)
  return Folds(f"{name}/{entity.name}", score(train_series), halves, injected)


def alarm_score(labels: np.ndarray, preds: np.ndarray) -> float:
  """Point F1 of the alarms times the share of their alarm events (runs of alarmed points)
  that lie mostly (at least half their points) inside labelled anomalies."""
  f1 = metrics.f1_from_counts(metrics.confusion_counts(labels, preds))[2]
  starts, ends = segments.bounds(np.asarray(preds, bool))
  if not starts.size:
    return 0.0
  inside = segments.run_sum(segments.cumulative(np.asarray(labels, bool)), starts, ends)
  return f1 * float(np.mean(2 * inside >= ends - starts + 1))


def injected_scores(folds: Folds, config: ml_collections.ConfigDict,
                    methods: list[tuple[str, dict]]) -> list[float]:
  """Mean alarm score of each threshold method (with its options) on `config`'s scores,
  over both halves and every injected copy."""
  smoothed = alarms.smooth(folds.train, config)
  scores = np.zeros((len(methods), 2, len(folds.injected[0])))
  for calibrating, (start, end) in enumerate(folds.halves):
    for copy, (copy_scores, labels) in enumerate(folds.injected[1 - calibrating]):
      test, calib = feature_scaling.apply(
          config.eval.feature_scaling, alarms.smooth(copy_scores, config), smoothed[start:end],
          floor=config.eval.scaling_floor, aggregation=config.eval.aggregation)
      for i, (method, options) in enumerate(methods):
        options = {**config.threshold.to_dict(), **options}
        try:
          threshold = thresholds.compute(method, calib_scores=calib.sum(axis=1),
                                         test_scores=test.sum(axis=1), options=options)
        except ValueError:  # e.g. too few peaks in a short half: the candidate fails there
          continue
        preds = thresholds.predict(test.sum(axis=1), threshold)
        scores[i, calibrating, copy] = alarm_score(labels, preds)
  return scores.mean(axis=(1, 2)).tolist()


def stability(folds: Folds, config: ml_collections.ConfigDict) -> dict[str, dict[int, float]]:
  """How much the alarm threshold moves with the calibration part, by its size.

  Returns {"stretches": ..., "resampled": ...}, each size -> relative spread
  (IQR / median) of the thresholds fitted on
    stretches: disjoint stretches of that size of the whole training series'
      scores (the estimate's noise plus the drift between stretches);
    resampled: moving-block bootstrap samples of that size (blocks of 50) of
      the held-out tail's scores (the estimate's noise alone).
  All scores are scaled by the held-out tail's statistics.
  """
  smoothed = alarms.smooth(folds.train, config)
  start = folds.halves[0][0]
  totals = feature_scaling.apply(config.eval.feature_scaling, smoothed, smoothed[start:],
                                 floor=config.eval.scaling_floor,
                                 aggregation=config.eval.aggregation)[0].sum(axis=1)
  tail = totals[start:]
  rng = np.random.default_rng(SEED)
  block = 50
  out = {"stretches": {}, "resampled": {}}
  for size in SIZES:
    stretches = [totals[b:b + size] for b in range(0, len(totals) - size + 1, size)]
    blocks = [np.concatenate([tail[b:b + block] for b in rng.integers(
        0, len(tail) - block, math.ceil(size / block))])[:size] for _ in range(30)]
    for name, samples in (("stretches", stretches), ("resampled", blocks)):
      out[name][size] = _relative_spread(samples, config)
  return out


def _relative_spread(samples: list[np.ndarray], config: ml_collections.ConfigDict) -> float:
  method = metric_summary.methods(config.threshold)[0]
  fitted = []
  for sample in samples:
    try:
      fitted.append(float(np.mean(thresholds.compute(method, calib_scores=sample,
                                                      test_scores=sample,
                                                      options=config.threshold))))
    except ValueError:
      fitted.append(np.nan)
  fitted = np.asarray(fitted)
  if len(fitted) < 3 or np.isnan(fitted).mean() > 0.5:
    return float("nan")
  low, median, high = np.nanpercentile(fitted, [25, 50, 75])
  return float((high - low) / abs(median)) if median else float("nan")


def _row(cells) -> str:
  return "| " + " | ".join(str(c) for c in cells) + " |"


def report(results: dict[str, dict[str, float]], chosen: Candidate,
           spreads: dict[str, dict[str, dict[int, float]]], folds: list[Folds],
           machine: str) -> str:
  names = sorted(next(iter(results.values())))
  ranked = sorted(results, key=lambda c: -np.mean(list(results[c].values())))
  groups = sorted({n.split("/")[0] for n in names})
  lines = ["# Default alarm pipeline, chosen on training data only", "",
           f"Machine: {machine}. Written by `python -m bench.alarm_defaults`.", "",
           __doc__.split("\n\n", 1)[1].strip(), "",
           f"Chosen (the top row, now the default in configs/common.py): `{chosen.name()}`.", "",
           "## Candidates by mean alarm score (the best 25, then the current default)", "",
           _row(["rank", "candidate", "mean score", *groups]), _row(["---"] * (3 + len(groups)))]
  default = _default_candidate()
  shown = ranked[:25] + ([default.name()] if default.name() in ranked[25:] else [])
  for name in shown:
    per_run = results[name]
    by_group = [np.mean([v for k, v in per_run.items() if k.split("/")[0] == g]) for g in groups]
    mean = np.mean(list(per_run.values()))
    lines.append(_row([ranked.index(name) + 1, f"`{name}`", f"{mean:.3f}",
                       *[f"{v:.3f}" for v in by_group]]))
  lines += ["", "## Each model's and baseline's own best candidate", "",
            "What a default per model would gain over the one default, on the same injections.",
            "", _row(["runs", "own best", "its score", "the default's score"]),
            _row(["---"] * 4)]
  for group in groups:
    def group_mean(candidate, group=group):
      return np.mean([v for k, v in results[candidate].items() if k.split("/")[0] == group])
    best = max(results, key=group_mean)
    lines.append(_row([group, f"`{best}`", f"{group_mean(best):.3f}",
                       f"{group_mean(chosen.name()):.3f}"]))
  lines += ["", "## How stable the default threshold is as the calibration part grows", "",
            "Relative spread (IQR over median) of the chosen pipeline's threshold fitted on "
            "calibration parts of each size (in points; `–` where fewer than three fit). "
            "*Stretches*: disjoint stretches of a run's training scores, the estimate's noise "
            "plus the drift between parts of the training period. *Resampled*: block-bootstrap "
            "samples of the held-out tail itself, the estimate's noise alone.", "",
            _row(["run", *[f"{kind} {s}" for kind in ("stretches", "resampled")
                           for s in SIZES]]),
            _row(["---"] * (1 + 2 * len(SIZES)))]
  for name, spread in sorted(spreads.items()):
    lines.append(_row([name, *["–" if np.isnan(spread[kind][s]) else f"{spread[kind][s]:.2f}"
                               for kind in ("stretches", "resampled") for s in SIZES]]))
  medians = [np.nanmedian([s[kind][size] for s in spreads.values()])
             for kind in ("stretches", "resampled") for size in SIZES]
  lines.append(_row(["**median**", *[f"{m:.2f}" for m in medians]]))
  tails = sorted({f.halves[1][1] - f.halves[0][0] for f in folds})
  lines += ["", f"The held-out tails here hold {tails[0]} to {tails[-1]} points "
            "(`data.val_fraction` 0.1 of each machine's training series)."]
  return "\n".join(lines) + "\n"


def _default_candidate() -> Candidate:
  config = common.get_config()
  ev, th = config.eval, config.threshold
  method = metric_summary.methods(th)[0]
  smoothing_options = {"ewma": {"smoothing_alpha": ev.smoothing_alpha},
                       "gaussian": {"smoothing_sigma": ev.smoothing_sigma}}.get(ev.smoothing, {})
  method_options = dict(next(o for m, o in METHODS if m == method))
  method_options = {k: th[k] for k in method_options}
  return Candidate(ev.smoothing, tuple(sorted(smoothing_options.items())), ev.scaling_floor,
                   ev.aggregation, method, tuple(sorted(method_options.items())))


def _cached(path: pathlib.Path, make):
  if path.exists():
    with np.load(path, allow_pickle=False) as arrays:
      meta = json.loads(str(arrays["meta"]))
      injected = tuple([(arrays[f"s{h}_{i}"], arrays[f"l{h}_{i}"]) for i in range(meta["copies"])]
                       for h in range(2))
      return Folds(meta["name"], arrays["train"], tuple(map(tuple, meta["halves"])), injected)
  folds = make()
  if folds is None:
    return None
  path.parent.mkdir(parents=True, exist_ok=True)
  arrays = {f"{kind}{h}_{i}": value for h, copies in enumerate(folds.injected)
            for i, pair in enumerate(copies) for kind, value in zip("sl", pair, strict=True)}
  meta = {"name": folds.name, "halves": folds.halves, "copies": len(folds.injected[0])}
  np.savez(path, train=folds.train, meta=json.dumps(meta), **arrays)
  return folds


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # orbax logs every restore at INFO
  cache = pathlib.Path(_CACHE.value)
  copies = _COPIES.value
  all_folds = []
  for job in _FROM_JOBS.value:
    for entity in accuracy.entities(accuracy.JOBS[job]):
      folds = _cached(cache / f"{job}-{entity}-{copies}-{INJECTIONS}.npz",
                      lambda j=job, e=entity: model_folds(j, e, copies))
      if folds is None:
        print(f"[{job} {entity}] not finished: left out")
        continue
      all_folds.append(folds)
  smd = accuracy.job_config("smd_omni", "all")
  for entity in data.load(smd.data).entities:
    for name in baselines.BASELINES:
      all_folds.append(_cached(cache / f"baseline-{name}-{entity.name}-{copies}-{INJECTIONS}.npz",
                               lambda n=name, e=entity: baseline_folds(n, e, smd, copies)))
  base = common.get_config()
  results = {}
  groups = {}
  for candidate in candidates():
    groups.setdefault(candidate.pipeline(), []).append(candidate)
  # Two stages, to keep the streaming methods (a GPD refit per peak) affordable: every
  # pipeline with the one-threshold methods, then the streaming ones on the best pipelines.
  for stage in ("fixed", "streaming"):
    if stage == "streaming":
      best = sorted(groups, key=lambda g: -max(np.mean(list(results[c.name()].values()))
                                                for c in groups[g] if c.name() in results))
      chosen_groups = best[:STREAMING_PIPELINES]
    else:
      chosen_groups = list(groups)
    for pipeline in chosen_groups:
      group = [c for c in groups[pipeline] if (c.method in STREAMING) == (stage == "streaming")]
      if not group:
        continue
      config = apply(base, {k: v for k, v in group[0].fields().items()
                            if k.startswith("eval.")})
      methods = [(c.method, dict(c.method_options)) for c in group]
      per_run = {f.name: injected_scores(f, config, methods) for f in all_folds}
      for i, candidate in enumerate(group):
        results[candidate.name()] = {name: values[i] for name, values in per_run.items()}
      print(f"{stage}: {pipeline}: best "
            f"{max(np.mean(list(results[c.name()].values())) for c in group):.3f}", flush=True)
  ranked = sorted((c for c in candidates() if c.name() in results),
                  key=lambda c: -np.mean(list(results[c.name()].values())))
  chosen = ranked[0]
  spreads = {f.name: stability(f, apply(base, chosen.fields())) for f in all_folds}
  out = pathlib.Path(_REPORT.value)
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(report(results, chosen, spreads, all_folds, runs.machine()))
  print(f"Chosen: {chosen.name()}\nReport written to {out}")


if __name__ == "__main__":
  app.run(main)
