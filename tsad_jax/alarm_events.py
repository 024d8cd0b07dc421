"""Alarm events: each run of consecutive alarmed rows, with its peak and its root cause.

Events are followed chunk by chunk (`follow`): an event still open at the end of
a chunk is carried in an `OpenEvent` and closed by the first row without an
alarm (or by `close` at the end of the input). A closed event's `record` says
when it started and ended, how long it lasted, its peak score and the
features that made most of its score: each feature's share of the positive
parts of its scaled scores summed over the event's rows.
"""

from typing import NamedTuple

import numpy as np
import pandas as pd

TOP_FEATURES = 3


class OpenEvent(NamedTuple):
  start_row: int  # rows of the stream, counted from 0
  start: str
  end: str
  rows: int
  peak: float
  peak_at: str
  peak_row: int  # the peak's row in the stream
  contributions: np.ndarray  # (D,) positive scaled scores summed over the rows so far


def follow(event: OpenEvent | None, alarm: np.ndarray, score: np.ndarray,
           per_feature: np.ndarray, stamps: list[str], *, first_row: int = 0
           ) -> tuple[OpenEvent | None, list[OpenEvent]]:
  """Rows `first_row`.. of a stream -> (the event open after them, the events they closed, in
  order)."""
  if not len(alarm):
    return event, []
  closed = []
  edges = np.flatnonzero(np.diff(np.concatenate([[0], alarm.astype(np.int8), [0]])))
  starts, ends = edges[::2], edges[1::2]  # alarmed rows start..end-1
  if event is not None and not (len(starts) and starts[0] == 0):
    closed.append(event)
    event = None
  for begin, end in zip(starts, ends, strict=True):
    rows = slice(begin, end)
    peak = begin + int(np.argmax(score[rows]))
    part = OpenEvent(first_row + begin, stamps[begin], stamps[end - 1], end - begin,
                     float(score[peak]), stamps[peak], first_row + peak,
                     np.maximum(per_feature[rows], 0).sum(axis=0))
    if event is not None:  # continues the event the chunk began in
      part = _extend(event, part)
    event = part
    if end < len(alarm):
      closed.append(event)
      event = None
  return event, closed


def _extend(event: OpenEvent, more: OpenEvent) -> OpenEvent:
  first = event if event.peak >= more.peak else more
  return OpenEvent(event.start_row, event.start, more.end, event.rows + more.rows, first.peak,
                   first.peak_at, first.peak_row, event.contributions + more.contributions)


def record(event: OpenEvent, feature_names: tuple[str, ...], *, heatmap: str = "") -> dict:
  """An event as a row of alarms.csv (`heatmap`: the file of its residual heatmap, if any)."""
  total = float(event.contributions.sum())
  order = np.argsort(-event.contributions, kind="stable")[:TOP_FEATURES]
  shares = event.contributions / total if total > 0 else np.zeros_like(event.contributions)
  return {
      "start": event.start,
      "end": event.end,
      "rows": event.rows,
      "duration": duration(event.start, event.end),
      "peak_score": round(event.peak, 6),
      "peak_at": event.peak_at,
      "top_features": ";".join(f"{feature_names[i]}:{shares[i]:.3f}" for i in order),
      "heatmap": heatmap,
  }


def duration(start: str, end: str) -> float:
  """end - start: in the timestamps' own units when they are numbers, in seconds for dates."""
  try:
    return float(end) - float(start)
  except ValueError:
    stamps = pd.to_datetime(pd.Series([start, end]), format="mixed", utc=True)
    return float((stamps[1] - stamps[0]).total_seconds())
