"""report.html: one self-contained page a person reads (no network: plots are inlined PNGs).

  run_page(run_dir)          a run (or one of its evaluations): the score and threshold over
                             time with alarm events (and true anomalies where labels exist),
                             the alarm table with root-cause features, a per-feature heatmap
                             around each event, the metrics and the config
  detection_page(out_dir)    the same for a `launch.detect` output
  comparison_page(root)      every run under a folder in one sortable table (launch.report)
"""

import base64
import html
import io
import json
import pathlib

import numpy as np
import pandas as pd

from tsad_jax import alarm_events
from tsad_jax import plots

PAGE = "report.html"
EVENTS_SHOWN = 20  # rows of the alarm table
HEATMAPS_SHOWN = 6  # events (the highest-peaking) with a heatmap
CONTEXT_ROWS = 60  # rows either side of an event in its heatmap
PLOTTED_POINTS = 20_000  # longer series are max-pooled to this many points for the overview

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1200px;color:#222}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;
text-align:right}th{background:#f4f4f4;cursor:pointer}td:first-child,th:first-child{text-align:left}
img{max-width:100%;display:block;margin:6px 0}pre{background:#f7f7f7;padding:8px;overflow:auto}
.note{color:#666}
"""
# Click a header to sort its table by that column (numbers as numbers), again to reverse.
_SORT = """
document.querySelectorAll('table.sortable th').forEach(function(th, i){
  th.addEventListener('click', function(){
    var body = th.closest('table').tBodies[0], rows = Array.from(body.rows);
    var down = th.dataset.down !== '1'; th.dataset.down = down ? '1' : '0';
    var key = function(r){ var t = r.cells[i].textContent, n = parseFloat(t);
      return isNaN(n) ? t : n; };
    rows.sort(function(a, b){ var x = key(a), y = key(b);
      return (x < y ? -1 : x > y ? 1 : 0) * (down ? -1 : 1); });
    rows.forEach(function(r){ body.appendChild(r); });
  });
});
"""


def _page(title: str, sections: list[str]) -> str:
  return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>"
          f"{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
          f"<h1>{html.escape(title)}</h1>{''.join(sections)}<script>{_SORT}</script>"
          "</body></html>")


def _image(draw, alt: str) -> str:
  """An inlined PNG of what `draw(file)` saves."""
  buffer = io.BytesIO()
  draw(buffer)
  data = base64.b64encode(buffer.getvalue()).decode()
  return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{data}'>"


def _table(frame: pd.DataFrame, *, sortable: bool = True) -> str:
  head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
  body = "".join("<tr>" + "".join(f"<td>{html.escape(_text(v))}</td>" for v in row) + "</tr>"
                 for row in frame.itertuples(index=False))
  kind = " class='sortable'" if sortable else ""
  return f"<table{kind}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _text(value) -> str:
  if isinstance(value, float | np.floating):
    return "" if np.isnan(value) else f"{value:.4g}"
  return str(value)


def _pooled(values: np.ndarray, points: int, reduce=np.max) -> tuple[np.ndarray, int]:
  """`values` cut into at most `points` equal buckets, each reduced: (reduced, bucket size)."""
  size = max(1, -(-len(values) // points))
  padded = np.resize(values, -(-len(values) // size) * size) if size > 1 else values
  return (reduce(padded.reshape(-1, size), axis=1) if size > 1 else values), size


def _overview(name: str, score, threshold, alarms, labels, method: str) -> str:
  score_p, size = _pooled(np.asarray(score, np.float64), PLOTTED_POINTS)
  threshold_p, _ = _pooled(np.asarray(threshold, np.float64), PLOTTED_POINTS, np.mean)
  alarm_p, _ = _pooled(np.asarray(alarms, np.uint8), PLOTTED_POINTS)
  label_p = None if labels is None else _pooled(np.asarray(labels, np.uint8), PLOTTED_POINTS)[0]
  pooled = f" (each point: the largest of {size} rows)" if size > 1 else ""
  return _image(lambda f: plots.score_with_threshold(score_p, label_p, threshold_p, name=name,
                                                     method=method, path=f, alarms=alarm_p),
                f"score of {name}") + (f"<p class='note'>{pooled}</p>" if pooled else "")


def _events(per_feature: np.ndarray, score: np.ndarray, alarms: np.ndarray,
            stamps: list[str], feature_names) -> tuple[pd.DataFrame, list[str]]:
  """The alarm table of a whole series and a heatmap around each of its highest events."""
  open_event, closed = alarm_events.follow(None, alarms, score, per_feature, stamps)
  closed += [open_event] if open_event is not None else []
  if not closed:
    return pd.DataFrame(), []
  table = pd.DataFrame([alarm_events.record(e, feature_names) for e in closed])
  position = {stamp: i for i, stamp in enumerate(stamps)}
  heatmaps = []
  for event in sorted(closed, key=lambda e: -e.peak)[:HEATMAPS_SHOWN]:
    start, end = position[event.start], position[event.end]
    first = max(start - CONTEXT_ROWS, 0)
    window = per_feature[first:end + CONTEXT_ROWS + 1]
    title = f"event {event.start} .. {event.end} (peak {event.peak:.3g} at {event.peak_at})"
    heatmaps.append(_image(lambda f, w=window, a=first, s=start, e=end, t=title:
                           plots.event_heatmap(w, feature_names, first=a, event=(s, e), title=t,
                                               path=f), title))
  return table.sort_values("peak_score", ascending=False).head(EVENTS_SHOWN), heatmaps


def _event_sections(table: pd.DataFrame, heatmaps: list[str]) -> list[str]:
  if table.empty:
    return ["<h2>Alarm events</h2><p>No alarm was raised.</p>"]
  return [f"<h2>Alarm events (the {len(table)} highest-peaking)</h2>", _table(table),
          "<h2>Per-feature scores around the events</h2>", *heatmaps]


def _metrics(summary: dict) -> list[str]:
  out = []
  if "threshold_free" in summary:
    rows = {"model": summary["threshold_free"]["mean"]}
    if "threshold_free_test_scaled" in summary:
      rows["model, test-scaled"] = summary["threshold_free_test_scaled"]["mean"]
    rows.update({f"baseline {n}": b["threshold_free"]["mean"]
                 for n, b in summary.get("baselines", {}).items()})
    frame = pd.DataFrame(rows).T.reset_index(names="scores")
    out += ["<h2>Threshold-free metrics (mean over entities)</h2>", _table(frame)]
  sections = summary.get("thresholds") or summary.get("alarms") or {}
  if sections:
    frame = pd.DataFrame({m: f["mean"] for m, f in sections.items()}).T.reset_index(names="method")
    title = "At each threshold (the first raises the alarms)" if "thresholds" in summary else (
        "Alarms at each threshold (no labels: no metrics)")
    out += [f"<h2>{title}</h2>", _table(frame)]
  return out


def _config_section(config: dict) -> str:
  return f"<h2>Config</h2><pre>{html.escape(json.dumps(config, indent=2))}</pre>"


def run_page(folder: str | pathlib.Path) -> pathlib.Path:
  """Writes `<folder>/report.html` for a run folder or one of its evaluations."""
  folder = pathlib.Path(folder)
  summary = json.loads((folder / "summary.json").read_text())
  config = json.loads((folder / "config.json").read_text())
  arrays = np.load(folder / "scores.npz")
  method = summary.get("scoring", {}).get("alarm_method", "")
  sections = [f"<p>{html.escape(summary['model'])} on {html.escape(summary['dataset'])}; "
              f"scores {html.escape(summary.get('scoring', {}).get('mode', ''))}. "
              + (f"Labels: {html.escape(summary['labels'])}." if "labels" in summary else "")
              + "</p>"]
  sections += _metrics(summary)
  feature_names = [str(n) for n in _feature_names(folder, arrays, summary["entities"][0])]
  for name in summary["entities"]:
    score, alarms = arrays[f"{name}/score"], arrays[f"{name}/alarm"]
    threshold = (arrays[f"{name}/threshold"] if f"{name}/threshold" in arrays
                 else _summary_threshold(summary, method, name))  # runs saved before it was
    labels = arrays[f"{name}/label"] if f"{name}/label" in arrays else None
    sections += [f"<h2>{html.escape(name)}: score over time</h2>",
                 _overview(name, score, np.broadcast_to(threshold, score.shape), alarms, labels,
                           method)]
    stamps = [str(i) for i in range(len(score))]
    sections += _event_sections(*_events(arrays[f"{name}/per_feature"], score, alarms, stamps,
                                         feature_names))
  sections.append(_config_section(config))
  path = folder / PAGE
  path.write_text(_page(f"tsad-jax run {folder.name}", sections), encoding="utf-8")
  return path


def _summary_threshold(summary: dict, method: str, name: str) -> float:
  figures = (summary.get("thresholds") or summary.get("alarms") or {}).get(method, {})
  return figures.get("per_entity", {}).get(name, figures.get("mean", {})).get("threshold", np.nan)


def _feature_names(folder: pathlib.Path, arrays, entity: str) -> list[str]:
  header = pd.read_csv(folder / "scores.csv", nrows=0).columns
  names = [c[len("score_"):] for c in header if c.startswith("score_")]
  return names or [str(i) for i in range(arrays[f"{entity}/per_feature"].shape[1])]


def detection_page(out_dir: str | pathlib.Path, *, config: dict, summary: dict) -> pathlib.Path:
  """Writes `<out_dir>/report.html` for a `launch.detect` output."""
  out_dir = pathlib.Path(out_dir)
  scores = pd.read_csv(out_dir / "scores.csv", dtype={0: str})
  stamp = scores.columns[0]
  feature_columns = [c for c in scores.columns if c.startswith("score_")]
  feature_names = [c[len("score_"):] for c in feature_columns]
  sections = [f"<p>{summary['rows']:,} rows of {html.escape(str(summary['run_input']))}, "
              f"{summary['alarm_events']} alarm events ({html.escape(summary['labels'])}).</p>"]
  if len(scores):
    sections += ["<h2>Score over time</h2>",
                 _overview("input", scores["score"].to_numpy(), scores["threshold"].to_numpy(),
                           scores["alarm"].to_numpy(), None, summary["alarm_method"])]
    sections += _event_sections(*_events(scores[feature_columns].to_numpy(),
                                         scores["score"].to_numpy(), scores["alarm"].to_numpy(),
                                         scores[stamp].astype(str).tolist(), feature_names))
  sections.append(_config_section(config))
  path = out_dir / PAGE
  path.write_text(_page(f"tsad-jax detection {out_dir.name}", sections), encoding="utf-8")
  return path


COMPARED = {  # column -> (summary section, method or None, figure)
    "VUS-PR": ("threshold_free", None, "VUS-PR"),
    "AUC-PR": ("threshold_free", None, "AUC-PR"),
    "label-free F1": ("thresholds", "alarm", "F1"),
    "oracle F1": ("thresholds", "best_f1_oracle", "F1"),
    "flagged": ("thresholds", "alarm", "flagged"),
    "anomaly share": ("thresholds", "alarm", "anomaly-share"),
    "events found": ("thresholds", "alarm", "detected-segments"),
    "false alarms/day": ("thresholds", "alarm", "false-alarms-per-day"),
    "PA-F1 (beside only)": ("thresholds", "alarm", "PA-F1"),
}


def comparison_page(root: str | pathlib.Path, out: str | pathlib.Path | None = None
                    ) -> pathlib.Path:
  """One sortable table of every run under `root` (each folder holding a summary.json and a
  config.json); written to `out` (default `<root>/report.html`)."""
  root = pathlib.Path(root)
  rows = []
  for path in sorted(root.rglob("summary.json")):
    if not (path.parent / "config.json").exists():
      continue
    summary = json.loads(path.read_text())
    row = {"run": str(path.parent.relative_to(root)), "model": summary.get("model", ""),
           "data": summary.get("dataset", ""), "entities": len(summary.get("entities", [])),
           "scores": summary.get("scoring", {}).get("mode", "").split(" (")[0]}
    method = summary.get("scoring", {}).get("alarm_method", "")
    for column, (section, which, figure) in COMPARED.items():
      part = summary.get(section, {}).get(method if which == "alarm" else which, {}) \
          if which else summary.get(section, {})
      row[column] = part.get("mean", {}).get(figure, float("nan"))
    row["label-free / oracle"] = row["label-free F1"] / row["oracle F1"] if row["oracle F1"] \
        else float("nan")
    rows.append(row)
  if not rows:
    raise FileNotFoundError(f"No run under {root}: --runs must name a folder holding run folders "
                            "(each with a summary.json), such as runs/.")
  table = pd.DataFrame(rows)
  sections = [f"<p>{len(rows)} runs under {html.escape(str(root))}. Threshold-free metrics "
              "lead; the label-free F1 is the default alarm's, beside the oracle's; "
              "point-adjusted F1 only beside them. Click a column to sort.</p>", _table(table)]
  out = pathlib.Path(out) if out else root / PAGE
  out.write_text(_page("tsad-jax runs", sections), encoding="utf-8")
  return out
