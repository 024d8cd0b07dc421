"""`launch.detect`: a trained run applied to a new CSV series, whole or as it grows.

  out/scores.csv   one row per input row: its timestamp, score, threshold, alarm and
                   each feature's scaled score
  out/alarms.csv   one row per alarm event (`alarm_events.record`), written when it ends
  out/heatmaps/    MSCRED (models with a residual heatmap): each event's, at its peak
  out/state.pkl    where the job stands: saved atomically every `checkpoint_rows` rows
  out/summary.json written when the input has been read to its end (not with --follow)
  out/report.html  the page a person reads (`report_page.detection_page`), when the job stops

The input is read in blocks of complete lines; the bytes after the last newline
are left for the next read, so a line still being written to a growing file is
waited for, not misread. `state.pkl` holds the input offset, the stream's state
(`stream.StreamState`), the gaps being filled, the open alarm event and the
sizes of the two CSV files at that moment. A job killed at any moment and
started again with the same --output cuts the CSV files back to those sizes
and reads on from that offset: no row or alarm is lost or written twice.
"""

import csv
import dataclasses
import io
import json
import os
import pathlib
import pickle
import select
import signal
import sys
import time
from typing import Any
from typing import NamedTuple

import numpy as np
import tqdm

from tsad_jax import alarm_events
from tsad_jax import plots
from tsad_jax import report_page
from tsad_jax import runs
from tsad_jax import stream
from tsad_jax.data import rows as rows_lib
from tsad_jax.data.types import DataError
from tsad_jax.data.types import Segment

STATE_FILE = "state.pkl"
STDIN = "-"
_BLOCK_BYTES = 1 << 20


@dataclasses.dataclass(frozen=True)
class Options:
  """How a detect job reads and writes (launch.detect's flags).

  missing: rows_lib.MISSING; timestamp_column: None: "timestamp" when the input
  has it; checkpoint_rows: rows between saved states; follow: keep reading as
  the input grows; idle_seconds: with follow, stop after this long without a
  new row (None: never); batch: windows scored per call of the model; report:
  write report.html when the job stops.
  """

  missing: str = "error"
  timestamp_column: str | None = None
  checkpoint_rows: int = 10_000
  follow: bool = False
  idle_seconds: float | None = None
  poll_seconds: float = 0.2
  batch: int = 64
  progress: bool = True
  report: bool = True


class JobState(NamedTuple):
  input: str
  offset: int
  line: int
  columns: rows_lib.Columns | None
  stream: stream.StreamState
  gaps: rows_lib.GapState | None
  last_time: Any
  waiting_stamps: list[str]
  event: alarm_events.OpenEvent | None
  peak_window: np.ndarray | None  # the window ending at the open event's peak (heatmap models)
  output_bytes: dict[str, int]
  rows: int
  events: int


def run(dep: stream.Deployment, input_path: str, out_dir: pathlib.Path, options: Options) -> dict:
  """Scores `input_path` ("-": standard input) into `out_dir`; returns the job's summary."""
  out_dir = pathlib.Path(out_dir)
  state = _open(dep, input_path, out_dir)
  started, stopping = time.perf_counter(), _stop_signals()
  writer = _Writer(out_dir, dep.feature_names, state.output_bytes)
  reader = _Reader(input_path, state.offset, state.line, follow=options.follow,
                   poll=options.poll_seconds, idle=options.idle_seconds)
  bar = tqdm.tqdm(total=reader.size or None, initial=state.offset, unit="B", unit_scale=True,
                  disable=not options.progress, desc="detect", leave=False)
  _checkpoint(out_dir, state, writer)  # a job killed before its first block restarts clean
  since_checkpoint = 0
  try:
    for block, offset, final in reader.blocks(stopping):
      state = _process(dep, state, block, options, writer, final=final)._replace(offset=offset)
      if reader.size:
        bar.update(offset - bar.n)
      since_checkpoint += len(block)
      if since_checkpoint >= options.checkpoint_rows or final:
        _checkpoint(out_dir, state, writer)
        since_checkpoint = 0
    _checkpoint(out_dir, state, writer)
  finally:
    bar.close()
    writer.close()
  summary = {
      "run_input": input_path, "rows": state.rows, "alarm_events": state.events,
      "open_event": state.event is not None, "seconds": time.perf_counter() - started,
      "finished": reader.finished, "alarm_method": dep.threshold.method,
      # each scores its share of a micro-batch's windows
      "devices": stream.scoring_mesh(dep, options.batch).size,
      "labels": "none: detect reads no labels",
  }
  if reader.finished:
    runs.write_json(out_dir / "summary.json", summary)
  if options.report:
    report_page.detection_page(out_dir, config=json.loads(dep.config.to_json()), summary=summary)
  return summary


def _open(dep: stream.Deployment, input_path: str, out_dir: pathlib.Path) -> JobState:
  """A new job's state, or the saved one of an interrupted job in `out_dir`."""
  saved = out_dir / STATE_FILE
  if (out_dir / "summary.json").exists():
    raise FileExistsError(f"{out_dir} holds a finished detection; choose another --output (its "
                          "files are kept).")
  if saved.exists():
    state = pickle.loads(saved.read_bytes())
    if state.input != input_path:
      raise ValueError(f"{out_dir} holds a detection of {state.input}, not {input_path}; "
                       "choose another --output to detect on another input.")
    return state
  if out_dir.exists() and any(out_dir.iterdir()):
    raise FileExistsError(f"{out_dir} is not empty and holds no detection to resume; choose "
                          "another --output (nothing in it is overwritten).")
  out_dir.mkdir(parents=True, exist_ok=True)
  return JobState(input_path, 0, 0, None, stream.start(dep), None, None, [], None, None,
                  {"scores.csv": 0, "alarms.csv": 0}, 0, 0)


def _process(dep: stream.Deployment, state: JobState, lines: list[tuple[int, str]],
             options: Options, writer: "_Writer", *, final: bool) -> JobState:
  """One block of (line number, text) lines through parsing, gaps, scoring and events."""
  columns, line = state.columns, lines[-1][0] if lines else state.line
  while columns is None and lines:
    (_, text), lines = lines[0], lines[1:]
    header = next(csv.reader([text]), [])
    if any(cell.strip() for cell in header):
      timestamp = options.timestamp_column
      if timestamp is None:
        timestamp = "timestamp" if "timestamp" in [c.strip() for c in header] else ""
      columns = rows_lib.match_columns(header, dep.feature_names, timestamp=timestamp,
                                       path=state.input)
      writer.header(columns)
      state = state._replace(gaps=rows_lib.start_gaps(len(dep.feature_names)))
  if columns is None:
    if final:
      raise DataError(f"{state.input} is empty: it needs a header row naming the run's feature "
                      "columns and at least one row of values.")
    return state._replace(line=line)
  parsed = rows_lib.parse_lines(lines, columns)
  last_time = rows_lib.check_order(parsed, state.last_time, columns)
  gaps, ready = rows_lib.fill_gaps(state.gaps, parsed, missing=options.missing, columns=columns,
                                   final=final)
  given = state.stream.scoring.rows + len(ready.values)
  if final and given < dep.window:
    raise DataError(f"{state.input} has {given} rows, fewer than the "
                    f"run's window ({dep.window}); a score needs a full window of rows.")
  stream_state, scored = stream.update(dep, state.stream, ready.values, batch=options.batch)
  stamps = state.waiting_stamps + ready.stamps
  done = len(scored.score)
  event, closed = alarm_events.follow(state.event, scored.alarm, scored.score,
                                      scored.per_feature, stamps[:done], first_row=scored.first)
  if final and event is not None:
    closed, event = closed + [event], None
  windows = _peak_windows(dep, state, ready.values, closed + ([event] if event else []))
  writer.scores(stamps[:done], scored)
  writer.events([alarm_events.record(e, dep.feature_names,
                                     heatmap=writer.heatmap(dep, e, windows.get(e.peak_row)))
                 for e in closed])
  return state._replace(line=line, columns=columns, stream=stream_state, gaps=gaps,
                        last_time=last_time, waiting_stamps=stamps[done:], event=event,
                        peak_window=windows.get(event.peak_row) if event else None,
                        rows=state.rows + done, events=state.events + len(closed))


def _peak_windows(dep: stream.Deployment, state: JobState, rows: np.ndarray,
                  events: list[alarm_events.OpenEvent]) -> dict[int, np.ndarray]:
  """The window ending at each event's peak, for models with a residual heatmap: from this
  chunk's rows, or kept from an earlier chunk for the event that was open."""
  if dep.model_lib.HOOKS.residual_matrices is None:
    return {}
  windows = {}
  if state.event is not None and state.peak_window is not None:
    windows[state.event.peak_row] = state.peak_window
  for event in events:
    window = stream.window_ending(dep, state.stream.scoring, rows, event.peak_row)
    if window is not None:
      windows[event.peak_row] = window
  return windows


def _checkpoint(out_dir: pathlib.Path, state: JobState, writer: "_Writer") -> None:
  sizes = writer.sync()
  runs.replace_atomically(out_dir / STATE_FILE, pickle.dumps(state._replace(output_bytes=sizes)))


def _stop_signals() -> list[bool]:
  """A flag set by SIGTERM or SIGINT: the job stops at the next block, its state saved."""
  stopping = [False]

  def stop(signum, frame):
    del signum, frame
    stopping[0] = True

  for sig in (signal.SIGTERM, signal.SIGINT):
    try:
      signal.signal(sig, stop)
    except ValueError:  # not the main thread: signals keep their handlers
      pass
  return stopping


class _Reader:
  """Complete lines of a file (from a byte offset) or of standard input, in blocks."""

  def __init__(self, path: str, offset: int, line: int, *, follow: bool, poll: float,
               idle: float | None):
    self.path, self.follow, self.poll, self.idle = path, follow, poll, idle
    self.line, self.finished, self.eof = line, False, False
    if path == STDIN:
      self.file, self.size = sys.stdin.buffer, None
    else:
      if not os.path.isfile(path):
        raise FileNotFoundError(f"The input {path} does not exist; pass a CSV file with "
                                "--input (or - for standard input).")
      self.file = open(path, "rb")  # noqa: SIM115 (closed when the blocks end)
      self.file.seek(offset)
      self.size = None if follow else os.path.getsize(path)
    self.offset = offset

  def blocks(self, stopping: list[bool]):
    """Yields (lines, offset after them, whether the input has ended)."""
    line, pending, quiet_since = self.line, b"", time.monotonic()
    try:
      while not stopping[0]:
        data = self._read()
        if data:
          quiet_since = time.monotonic()
          pending += data
          cut = pending.rfind(b"\n") + 1
          complete, pending = pending[:cut], pending[cut:]
        else:
          complete = b""
        ended = not data and (self.eof or not self.follow)
        if ended and pending:  # the last line of a finished file needs no newline
          complete, pending = pending, b""
        if complete or ended:
          self.offset += len(complete)
          texts = complete.decode("utf-8", errors="replace").splitlines()
          yield [(line + i + 1, t) for i, t in enumerate(texts)], self.offset, ended
          line += len(texts)
        if ended:
          self.finished = True
          return
        if not data:
          if self.idle is not None and time.monotonic() - quiet_since > self.idle:
            return
          time.sleep(self.poll)
    finally:
      if self.path != STDIN:
        self.file.close()

  def _read(self) -> bytes:
    if self.path != STDIN:
      return self.file.read(_BLOCK_BYTES)
    if not self.follow:
      data = os.read(self.file.fileno(), _BLOCK_BYTES)  # waits for rows or the end
      self.eof = not data
      return data
    ready, _, _ = select.select([self.file], [], [], self.poll)
    data = os.read(self.file.fileno(), _BLOCK_BYTES) if ready else b""
    self.eof = bool(ready) and not data  # standard input closed: the stream has ended
    return data


class _Writer:
  """Appends to scores.csv and alarms.csv, each first cut back to its saved size."""

  EVENT_COLUMNS = ("start", "end", "rows", "duration", "peak_score", "peak_at", "top_features",
                   "heatmap")

  def __init__(self, out_dir: pathlib.Path, feature_names: tuple[str, ...],
               sizes: dict[str, int]):
    self.out_dir, self.feature_names = out_dir, feature_names
    self.files = {}
    for name, size in sizes.items():
      path = out_dir / name
      path.touch()
      with open(path, "r+b") as f:
        f.truncate(size)
      self.files[name] = open(path, "a", encoding="utf-8", newline="")  # noqa: SIM115
    if not sizes["alarms.csv"]:
      self.files["alarms.csv"].write(",".join(self.EVENT_COLUMNS) + "\n")

  def header(self, columns: rows_lib.Columns) -> None:
    stamp = "line" if columns.timestamp is None else columns.header[columns.timestamp]
    names = [f"score_{name}" for name in self.feature_names]
    self.files["scores.csv"].write(",".join([stamp, "score", "threshold", "alarm", *names]) + "\n")

  def scores(self, stamps: list[str], scored: stream.Scored) -> None:
    if not stamps:
      return
    numbers = np.column_stack([scored.score, scored.threshold, scored.alarm, scored.per_feature])
    text = io.StringIO()
    np.savetxt(text, numbers, fmt="%.6g", delimiter=",")
    lines = text.getvalue().splitlines()
    self.files["scores.csv"].write("".join(
        f"{_cell(stamp)},{line}\n" for stamp, line in zip(stamps, lines, strict=True)))

  def events(self, records: list[dict]) -> None:
    for record in records:
      self.files["alarms.csv"].write(
          ",".join(_cell(str(record[c])) for c in self.EVENT_COLUMNS) + "\n")

  def heatmap(self, dep: stream.Deployment, event: alarm_events.OpenEvent,
              window: np.ndarray | None) -> str:
    """Draws the residual heatmap at the event's peak (models that have one); its file name."""
    if window is None:
      return ""
    name = f"heatmaps/event-{event.start_row}.png"
    (self.out_dir / "heatmaps").mkdir(exist_ok=True)
    plots.residual_heatmap(stream.residual_matrix(dep, window), self.feature_names,
                           name="input", segment=Segment(event.start_row,
                                                         event.start_row + event.rows - 1),
                           peak=event.peak_row, path=self.out_dir / name)
    return name

  def sync(self) -> dict[str, int]:
    """Flushes both files to disk; returns their sizes."""
    sizes = {}
    for name, f in self.files.items():
      f.flush()
      os.fsync(f.fileno())
      sizes[name] = f.tell()
    return sizes

  def close(self) -> None:
    for f in self.files.values():
      f.close()


def _cell(text: str) -> str:
  return f'"{text}"' if ("," in text or '"' in text) else text
