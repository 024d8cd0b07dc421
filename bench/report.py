"""docs/RESULTS.md from the summaries of the accuracy benchmark's runs."""

import dataclasses
import datetime
import json
import pathlib

import numpy as np

from tsad_jax import metric_summary
from tsad_jax import models

NOTES = pathlib.Path(__file__).with_name("accuracy_notes.md")  # hand-written, appended as is
ALARM = "alarm"  # pooled figures at each run's own alarms (its first threshold method)
POOLED_KEYS = ("F1", "PA-F1", "flagged", "detected-segments", "false-alarms-per-day")

# Point-adjusted F1 as the papers report it (their own preprocessing and thresholds).
PUBLISHED_PA_F1 = {
    ("OmniAnomaly", "smd"): 0.9620,
    ("OmniAnomaly", "smap"): 0.8434,
    ("OmniAnomaly", "msl"): 0.8989,
    ("MTAD-GAT", "smap"): 0.9013,
    ("MTAD-GAT", "msl"): 0.9084,
}
# TSB-AD-M leaderboard (Liu & Paparrizos, NeurIPS 2024), mean VUS-PR over its series of
# each data set: benchmark_exp/benchmark_eval_results/multi_mergedTable_VUS-PR.csv at
# TheDatumOrg/TSB-AD 35ba9c3. Its series are TSB-AD's own cuts (20 SMD, 25 SMAP, 14 MSL
# series, train = the head of each series, tuned hyper-parameters), not this protocol.
TSB_AD_VUS_PR = {
    ("OmniAnomaly", "smd"): (0.174, 20),
    ("OmniAnomaly", "smap"): (0.124, 25),
    ("OmniAnomaly", "msl"): (0.216, 14),
    ("PCA", "smd"): (0.364, 20),
}
# Jobs that run a variant of a model are titled by job.
JOB_TITLES = {"smd_sdmae": "SD-MAE linear", "smd_sdmae_cnn_first": "SD-MAE cnn_first",
              "smd_sdmae_patch_cnn": "SD-MAE patch_cnn",
              "smd_sdmae_patch_cnn_swept": "SD-MAE patch_cnn (swept)",
              "smd_lstmae_clf": "LSTM-AE clf", "smd_lstmae_pred": "LSTM-AE pred"}
DATASET_TITLES = {"smd": "SMD", "smap": "SMAP", "msl": "MSL"}
_INTERPRETATION = ("HitRate@100%", "HitRate@150%", "NDCG@100%", "NDCG@150%")


@dataclasses.dataclass(frozen=True)
class JobResult:
  job: str  # config module name
  dataset: str
  summaries: dict[str, dict]  # entity -> summary.json
  pooled: dict | None  # over entities, see bench.accuracy.pooled


def save(result: JobResult, results_dir: pathlib.Path) -> pathlib.Path:
  """Keeps a finished job's figures as `<results_dir>/<job>.json`."""
  results_dir.mkdir(parents=True, exist_ok=True)
  path = results_dir / f"{result.job}.json"
  path.write_text(json.dumps(dataclasses.asdict(result), indent=1) + "\n")
  return path


def load_all(results_dir: pathlib.Path) -> dict[str, JobResult]:
  """Every job kept in `results_dir`, by job name."""
  paths = sorted(results_dir.glob("*.json")) if results_dir.is_dir() else []
  results = [JobResult(**json.loads(p.read_text())) for p in paths]
  order = list(DATASET_TITLES)
  results.sort(key=lambda r: (order.index(r.dataset) if r.dataset in order else len(order), r.job))
  return {r.job: r for r in results}


def machines(results: dict[str, JobResult]) -> str:
  """The machines the kept runs ran on, "; "-joined."""
  names = {s.get("machine", "unknown") for r in results.values() for s in r.summaries.values()}
  return "; ".join(sorted(names))


def _f(value) -> str:
  return "–" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.3f}"


def _row(cells) -> str:
  return "| " + " | ".join(str(c) for c in cells) + " |"


def _model(result: JobResult) -> str:
  name = next(iter(result.summaries.values()))["model"]
  return JOB_TITLES.get(result.job) or models.get(name).TITLE


def alarm_method(summary: dict) -> str:
  """The threshold method that raised a summary's alarms (POT for summaries older than that)."""
  return summary.get("scoring", {}).get("alarm_method", "pot")


def _test_scaled_vus(summary: dict) -> float | None:
  return summary.get("threshold_free_test_scaled", {}).get("mean", {}).get("VUS-PR")


def _entity_cells(summary: dict) -> list[str]:
  free = summary["threshold_free"]["mean"]
  alarm = summary["thresholds"][alarm_method(summary)]["mean"]
  oracle = summary["thresholds"][metric_summary.ORACLE]["mean"]
  explained = summary.get("interpretation", {}).get("mean", {})
  training = summary.get("training", {})
  return ([_f(free["VUS-PR"]), _f(free["AUC-PR"]), _f(_test_scaled_vus(summary)),
           _f(alarm["F1"]), _f(oracle["F1"]), _f(alarm.get("flagged")),
           _f(alarm.get("anomaly-share")), _f(alarm.get("detected-segments")),
           _f(alarm.get("false-alarms-per-day")), _f(alarm["PA-F1"])]
          + [_f(explained.get(k)) for k in _INTERPRETATION]
          + [f"{training.get('seconds', float('nan')):.0f}", str(training.get("epochs", "–"))])


_HEADER = ["model", "entity", "VUS-PR", "AUC-PR", "VUS-PR (test-scaled)", "F1 (label-free)",
           "F1 (oracle)", "flagged", "anomalous", "events found", "false alarms / day",
           "PA-F1 (label-free)", "HR@100%", "HR@150%", "NDCG@100%", "NDCG@150%", "train s",
           "epochs"]


def _mean(values) -> float:
  values = [v for v in values if v is not None and not np.isnan(v)]
  return float(np.mean(values)) if values else float("nan")


def _dataset_table(results: list[JobResult]) -> list[str]:
  lines = [_row(_HEADER), _row(["---"] * len(_HEADER))]
  for result in results:
    model = _model(result)
    for entity, summary in sorted(result.summaries.items()):
      lines.append(_row([model, entity] + _entity_cells(summary)))
    if len(result.summaries) > 1:
      cells = [_entity_cells(s) for s in result.summaries.values()]
      means = [_f(_mean([None if c[i] == "–" else float(c[i]) for c in cells]))
               for i in range(len(cells[0]) - 2)]
      total = sum(s.get("training", {}).get("seconds", 0.0) for s in result.summaries.values())
      lines.append(_row([f"**{model}**", "**mean**"] + means + [f"{total:.0f} (total)", ""]))
    if result.pooled:
      p = result.pooled
      cells = [_f(p["VUS-PR"]), _f(p["AUC-PR"]), "", _f(p.get(f"{ALARM}/F1")),
               _f(p.get(f"{metric_summary.ORACLE}/F1")), _f(p.get(f"{ALARM}/flagged")), "",
               _f(p.get(f"{ALARM}/detected-segments")),
               _f(p.get(f"{ALARM}/false-alarms-per-day")), _f(p.get(f"{ALARM}/PA-F1"))]
      lines.append(_row([model, "pooled"] + cells + [""] * 6))
  return lines


def _nonfinite_line(results: list[JobResult]) -> str:
  """How many training steps were skipped for NaN/inf gradients, per model, over its runs."""
  counts = []
  for result in results:
    skipped = [s.get("training", {}).get("nonfinite_steps") for s in result.summaries.values()]
    known = [n for n in skipped if n is not None]
    counts.append(f"{_model(result)} {sum(known)} in {len(known)} runs" if known else
                  f"{_model(result)} not recorded")
  return "Training steps skipped for non-finite gradients: " + "; ".join(counts) + "."


def _baseline_figures(summary: dict, name: str) -> dict:
  """A baseline's section of a summary: threshold-free and thresholded figures (older
  summaries held the threshold-free figures alone)."""
  section = summary["baselines"][name]
  return section if "threshold_free" in section else {"threshold_free": section}


def _baseline_table(results: list[JobResult]) -> list[str]:
  summaries = results[0].summaries
  names = list(next(iter(summaries.values()))["baselines"])
  header = ["baseline", "entity", "VUS-PR", "AUC-PR", "VUS-PR (test-scaled)", "F1 (label-free)",
            "F1 (oracle)"]
  lines = [_row(header), _row(["---"] * len(header))]
  for name in names:
    per_entity = {e: _baseline_cells(_baseline_figures(s, name), alarm_method(s))
                  for e, s in sorted(summaries.items())}
    for entity, cells in per_entity.items():
      lines.append(_row([name, entity] + [_f(c) for c in cells]))
    if len(per_entity) > 1:
      lines.append(_row([f"**{name}**", "**mean**"] + [
          _f(_mean([c[i] for c in per_entity.values()])) for i in range(5)]))
  return lines


def _baseline_cells(figures: dict, method: str) -> list:
  free = figures["threshold_free"]["mean"]
  at = figures.get("thresholds", {})
  scaled = figures.get("threshold_free_test_scaled", {}).get("mean", {}).get("VUS-PR")
  return [free["VUS-PR"], free["AUC-PR"], scaled,
          at.get(method, {}).get("mean", {}).get("F1"),
          at.get(metric_summary.ORACLE, {}).get("mean", {}).get("F1")]


def _verdicts(by_dataset: dict[str, list[JobResult]]) -> list[str]:
  header = ["data set", "model", "entities", "VUS-PR (mean)", "VUS-PR test-scaled", "zscore",
            "pca", "beats both"]
  lines = [_row(header), _row(["---"] * len(header))]
  for dataset, results in by_dataset.items():
    for result in results:
      summaries = result.summaries.values()
      model = _mean([s["threshold_free"]["mean"]["VUS-PR"] for s in summaries])
      scaled = _mean([_test_scaled_vus(s) for s in summaries])
      base = {n: _mean([_baseline_figures(s, n)["threshold_free"]["mean"]["VUS-PR"]
                        for s in summaries]) for n in ("zscore", "pca")}
      verdict = "yes" if all(model > v for v in base.values()) else "**no**"
      lines.append(_row([DATASET_TITLES.get(dataset, dataset), _model(result),
                         len(result.summaries), _f(model), _f(scaled), _f(base["zscore"]),
                         _f(base["pca"]), verdict]))
  return lines


def _alarm_row(title: str, per_entity: list[tuple[dict, dict]]) -> list[str]:
  """Mean alarm figures over entities: (label-free figures, oracle figures) per entity."""
  mean = lambda key, which=0: _mean([pair[which].get(key) for pair in per_entity])
  label_free, oracle = mean("F1"), mean("F1", 1)
  ratio = label_free / oracle if oracle and not np.isnan(oracle) else float("nan")
  return [title, _f(label_free), _f(oracle), _f(ratio), _f(mean("flagged")),
          _f(mean("anomaly-share")), _f(mean("detected-segments")),
          _f(mean("false-alarms-per-day")), _f(mean("PA-F1"))]


def _alarms(by_dataset: dict[str, list[JobResult]]) -> list[str]:
  header = ["data set", "model", "F1 (label-free)", "F1 (oracle)", "ratio", "flagged",
            "anomalous", "events found", "false alarms / day", "PA-F1 (label-free)"]
  lines = [_row(header), _row(["---"] * len(header))]
  for dataset, results in by_dataset.items():
    title = DATASET_TITLES.get(dataset, dataset)
    for result in results:
      pairs = [(s["thresholds"][alarm_method(s)]["mean"],
                s["thresholds"][metric_summary.ORACLE]["mean"]) for s in result.summaries.values()]
      lines.append(_row([title] + _alarm_row(_model(result), pairs)))
    summaries = list(results[0].summaries.values())
    for name in summaries[0]["baselines"]:
      sections = [(_baseline_figures(s, name), alarm_method(s)) for s in summaries]
      if all("thresholds" in f for f, _ in sections):
        pairs = [(f["thresholds"][m]["mean"], f["thresholds"][metric_summary.ORACLE]["mean"])
                 for f, m in sections]
        lines.append(_row([title] + _alarm_row(f"baseline: {name}", pairs)))
  return lines


def _published(by_dataset: dict[str, list[JobResult]]) -> list[str]:
  lines = [_row(["data set", "model", "ours: PA-F1 (label-free)", "ours: VUS-PR",
                 "paper: PA-F1 (point-adjusted)", "TSB-AD-M: VUS-PR (series)"]),
           _row(["---"] * 6)]
  for dataset, results in by_dataset.items():
    for result in results:
      model = _model(result)
      summaries = result.summaries.values()
      pa = _mean([s["thresholds"][alarm_method(s)]["mean"]["PA-F1"] for s in summaries])
      vus = _mean([s["threshold_free"]["mean"]["VUS-PR"] for s in summaries])
      paper = PUBLISHED_PA_F1.get((model, dataset))
      tsb = TSB_AD_VUS_PR.get((model, dataset))
      lines.append(_row([DATASET_TITLES.get(dataset, dataset), model, _f(pa), _f(vus),
                         _f(paper), f"{tsb[0]:.3f} ({tsb[1]})" if tsb else "–"]))
  tsb_pca = TSB_AD_VUS_PR[("PCA", "smd")]
  lines.append(_row(["SMD", "PCA (for scale)", "–", "–", "–",
                     f"{tsb_pca[0]:.3f} ({tsb_pca[1]})"]))
  return lines


def _modes(results: dict[str, JobResult]) -> str:
  """The scoring modes and alarm methods the kept runs used, for the report's header."""
  modes = {s.get("scoring", {}).get("mode", "test-scaled (runs older than the causal default)")
           for r in results.values() for s in r.summaries.values()}
  methods = {alarm_method(s) for r in results.values() for s in r.summaries.values()}
  return (f"Scores: {'; '.join(sorted(modes))}. Alarms: the "
          f"{', '.join(sorted(methods))} threshold.")


_INTRO = """\
Written by `python -m bench.accuracy` (data from `$TSAD_JAX_DATA_ROOT`); rerun it to
reproduce every figure here. Every model runs with its default config from `configs/`
and seed 0; nothing was tuned to these machines, and nothing a score or an alarm depends
on reads the test series after that point or any test label: scaling statistics and
thresholds come from the held-out validation tail of each training series (the
default pipeline and how it was chosen: `docs/alarm_defaults.md`).

How to read it:
- **VUS-PR** and **AUC-PR** are threshold-free and lead (TSB-AD's definitions; VUS
  sliding window 100), in the causal mode every run uses. **VUS-PR (test-scaled)**
  re-scores the same runs with each feature scaled by the whole test series (GDN's
  transductive protocol), for comparison only.
- **F1 (label-free)**: point-wise F1 of the alarms users get, at the default threshold
  fitted on the validation tail, never on test labels.
- **F1 (oracle)**: the best F1 over all thresholds on the test labels. It is an upper
  bound, not a result (TSB-AD's Standard-F1); **ratio** is label-free over oracle.
- **flagged** / **anomalous**: the share of test points alarmed, and the share labelled.
- **events found**: the share of labelled anomaly segments with at least one alarm;
  **false alarms / day**: alarm events touching no labelled point, per day of test
  data (SMD: one row a minute; "–" where the data set gives no sampling rate).
- **PA-F1**: point-adjusted F1, shown only beside the above. On these SMD machines a
  uniform random score gets a PA-F1 of 0.87 (`python -m bench.baseline_scores`).
- **HR / NDCG**: the OmniAnomaly paper's interpretation metrics. At every labelled
  anomalous test point, the features are ranked by their score and compared with the
  `interpretation_label` dims (SMD only).
- **pooled**: all machines' test points together, with each machine's own alarms.
- **train s**: wall time of training alone, not counting scoring.
"""


def markdown(results: dict[str, JobResult], *, machine: str) -> str:
  by_dataset: dict[str, list[JobResult]] = {}
  for result in results.values():
    by_dataset.setdefault(result.dataset, []).append(result)
  date = datetime.date.today().isoformat()
  lines = ["# Accuracy on SMD, SMAP and MSL", "", f"Machine: {machine}. Date: {date}.", "",
           _modes(results), "", _INTRO, "## Against the baselines (mean VUS-PR over entities)", ""]
  lines += _verdicts(by_dataset)
  lines += ["", "## Alarms without labels (means over entities)", ""]
  lines += _alarms(by_dataset)
  lines += ["", "## Beside published figures", "",
            "The papers report point-adjusted F1 after their own threshold search, so their "
            "column compares only with our PA-F1 column. TSB-AD-M's VUS-PR comes from its own "
            "cuts of these data sets, so it shows scale, not a like-for-like comparison.", ""]
  lines += _published(by_dataset)
  for dataset, dataset_results in by_dataset.items():
    lines += ["", f"## {DATASET_TITLES.get(dataset, dataset)}", ""]
    lines += _dataset_table(dataset_results)
    lines += ["", _nonfinite_line(dataset_results)]
    lines += ["", "Baselines on the same data, scored and thresholded like the models:", ""]
    lines += _baseline_table(dataset_results)
  if NOTES.exists():
    lines += ["", NOTES.read_text().strip()]
  return "\n".join(lines) + "\n"
