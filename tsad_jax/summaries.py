"""Reading summary.json: loading, comparing two, and the few lines the terminal shows."""

import json
import pathlib

import numpy as np


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
                  "interpretation", "alarms"):
    walk(a.get(section), b.get(section), section)
  return differ


def load_summary(run_dir: str | pathlib.Path) -> dict:
  return json.loads((pathlib.Path(run_dir) / "summary.json").read_text())


def headline(summary: dict) -> str:
  """A few lines for the terminal: the model's leading metrics beside the baselines, then
  its alarms at each threshold method beside the oracle (without labels: the alarms)."""
  if "alarms" in summary:
    return _unlabeled_headline(summary)
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


def _unlabeled_headline(summary: dict) -> str:
  lines = [f"scores: {summary['scoring']['mode']}", f"labels: {summary['labels']}"]
  for method, figures in summary["alarms"].items():
    m = figures["pooled"]
    lines.append(f"threshold {method}: flagged {m['flagged']:.4f} of the test rows, "
                 f"{m['alarm-events']} alarm events")
  return "\n".join(lines)
