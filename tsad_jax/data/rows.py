"""New rows of a CSV series, read in chunks as they arrive (`launch.detect`).

The header names the columns: a run's feature columns, in any order, and
optionally a timestamp column; any other column is refused. Each chunk of
lines is parsed and checked on its own, with errors naming the file, the line
and the column: a row with too few or too many cells, a cell that is not a
number, a timestamp that is unreadable or not after the one before.

Gaps (empty cells, NaN, inf) follow `data.missing`:
  error:        refused, naming where (the default);
  ffill:        a gap takes its column's last value;
  interpolate:  a gap takes the straight line between its column's values before and
                after it, so its row waits for the next value of that column.
A gap before a column's first value takes that first value (both ways); a gap
the input ends in takes the last one.
"""

import csv
import dataclasses
import io
from typing import NamedTuple

import numpy as np
import pandas as pd

from tsad_jax.data import checks
from tsad_jax.data.types import DataError

MISSING = ("error", "ffill", "interpolate")


@dataclasses.dataclass(frozen=True)
class Columns:
  """Where the run's features and the timestamp sit in an input's header."""

  path: str
  header: tuple[str, ...]
  features: tuple[int, ...]
  timestamp: int | None


def match_columns(header: list[str], feature_names: tuple[str, ...], *, timestamp: str,
                  path: str) -> Columns:
  """The input's columns matched to the run's features by name; refuses missing and extra ones.

  `timestamp`: the timestamp column's name; "" for none.
  """
  header = [name.strip() for name in header]
  repeated = sorted({name for name in header if header.count(name) > 1})
  if repeated:
    raise DataError(f"{path}: the header repeats the columns {checks.listing(repeated)}; "
                    "rename them.")
  missing = [name for name in feature_names if name not in header]
  if missing:
    raise DataError(f"{path}: line 1 lacks the run's feature columns {checks.listing(missing)} "
                    f"(the run was trained on {checks.listing(feature_names)}); add them.")
  if timestamp and timestamp not in header:
    raise DataError(f"{path}: line 1 has no timestamp column {timestamp!r}; name the input's "
                    "timestamp column with --timestamp_column, or set it to '' for none.")
  extra = [name for name in header if name not in feature_names and name != timestamp]
  if extra:
    raise DataError(f"{path}: line 1 has columns that are not the run's features: "
                    f"{checks.listing(extra)}. Drop them, or name the timestamp column with "
                    "--timestamp_column.")
  return Columns(path, tuple(header), tuple(header.index(name) for name in feature_names),
                 header.index(timestamp) if timestamp else None)


class Parsed(NamedTuple):
  """A chunk of rows: (n, D) float64 values with NaN where a cell was empty, the timestamp
  texts (or the line numbers as text, without a timestamp column) and the file lines."""

  values: np.ndarray
  stamps: list[str]
  lines: np.ndarray


def parse_lines(lines: list[tuple[int, str]], columns: Columns) -> Parsed:
  """(line number, text) lines after the header -> numbers; lines of blank cells are skipped.

  Plain lines (no quotes, one cell per column, a number or nothing in every feature
  cell) are parsed by pandas' C reader, which reads a number to the same float as
  Python does; any other block goes cell by cell through `_parse_cells`, which names the
  line and column of what it refuses.
  """
  fast = _parse_plain(lines, columns)
  if fast is not None:
    return fast
  cells = [(number, row) for number, text in lines
           for row in csv.reader([text]) if row and any(cell.strip() for cell in row)]
  return _parse_cells([row for _, row in cells], [number for number, _ in cells], columns)


def _parse_plain(lines: list[tuple[int, str]], columns: Columns) -> Parsed | None:
  """`parse_lines`' result for a block of plain lines; None for any other block."""
  lines = [(number, text) for number, text in lines if text.strip()]
  cuts = len(columns.header) - 1
  if not lines or any('"' in text or text.count(",") != cuts for _, text in lines):
    return None
  types = {column: np.float64 for column in columns.features}
  if columns.timestamp is not None:
    types[columns.timestamp] = str
  try:
    table = pd.read_csv(io.StringIO("\n".join(text for _, text in lines)), header=None,
                        dtype=types, keep_default_na=False,
                        na_values={column: [""] for column in columns.features})
  except (ValueError, pd.errors.ParserError):
    return None
  values = table[list(columns.features)].to_numpy(np.float64)
  if len(values) != len(lines) or np.isnan(values).all(axis=1).any():
    return None  # a row of blank cells (skipped) or a row pandas read otherwise: cell by cell
  numbers = [number for number, _ in lines]
  stamps = ([str(number) for number in numbers] if columns.timestamp is None
            else [str(stamp).strip() for stamp in table[columns.timestamp]])
  return Parsed(values, stamps, np.asarray(numbers, np.int64))


def _parse_cells(rows: list[list[str]], lines: list[int], columns: Columns) -> Parsed:
  """Cells -> numbers; refuses a ragged row or a cell that is neither a number nor empty."""
  width = len(columns.header)
  for row, line in zip(rows, lines, strict=True):
    if len(row) != width:
      raise DataError(f"{columns.path}: line {line} has {len(row)} cells but the header has "
                      f"{width}; every row needs one value per column.")
  values = np.empty((len(rows), len(columns.features)), np.float64)
  for j, column in enumerate(columns.features):
    cells = [row[column].strip() for row in rows]
    try:
      values[:, j] = [float(cell) if cell else np.nan for cell in cells]
    except ValueError:
      line, cell = next((line, cell) for line, cell in zip(lines, cells, strict=True)
                        if cell and not _is_number(cell))
      raise DataError(f"{columns.path}: line {line}, column {columns.header[column]!r}: "
                      f"{cell!r} is not a number; fix that cell or leave it empty (a gap, "
                      "see --missing).") from None
  if columns.timestamp is None:
    stamps = [str(line) for line in lines]
  else:
    stamps = [row[columns.timestamp].strip() for row in rows]
  return Parsed(values, stamps, np.asarray(lines, np.int64))


def _is_number(cell: str) -> bool:
  try:
    float(cell)
  except ValueError:
    return False
  return True


def check_order(parsed: Parsed, previous, columns: Columns):
  """Refuses an unreadable, repeated or backwards timestamp; returns the chunk's last time
  (for the next chunk's check: `previous`, None before the first), or `previous` for an empty
  chunk or an input without timestamps."""
  if columns.timestamp is None or not parsed.stamps:
    return previous
  name = columns.header[columns.timestamp]
  times = parse_times(parsed.stamps, parsed.lines, column=name, path=columns.path)
  if previous is not None and isinstance(previous, float) != (times.dtype.kind == "f"):
    raise DataError(f"{columns.path}: line {parsed.lines[0]}, timestamp column {name!r}: "
                    f"{parsed.stamps[0]!r} mixes numbers and dates; use one kind.")
  before = times[:-1] if previous is None else np.concatenate([[previous], times[:-1]])
  rows = np.arange(len(times))[len(times) - len(before):]  # the rows that have a row before
  bad = rows[times[rows] <= before]
  if bad.size:
    i = bad[0]
    what = "repeats" if times[i] == before[i - rows[0]] else "goes back from"
    raise DataError(f"{columns.path}: line {parsed.lines[i]}, timestamp column {name!r}: "
                    f"{parsed.stamps[i]!r} {what} the row before; rows must be in time order "
                    "with no repeated timestamps. Sort the file and drop repeated rows.")
  return float(times[-1]) if times.dtype.kind == "f" else times[-1]


def parse_times(stamps: list[str], lines, *, column: str, path) -> np.ndarray:
  """Timestamp texts as float64 numbers or as datetime64 (UTC); refuses a text that is
  neither, naming its line."""
  try:
    return np.asarray(stamps, np.float64)
  except ValueError:
    pass
  parsed = pd.to_datetime(pd.Series(stamps), errors="coerce", format="mixed", utc=True)
  bad = np.flatnonzero(parsed.isna().to_numpy())
  if bad.size:
    raise DataError(f"{path}: line {lines[bad[0]]}, timestamp column {column!r}: "
                    f"{stamps[bad[0]]!r} is neither a number nor a date; fix that cell.")
  return parsed.to_numpy(dtype="datetime64[ns]")


class GapState(NamedTuple):
  """Each column's last value (NaN before its first) and its row, counted back from the next
  row to arrive (-1: the row before it), and the rows waiting for a value."""

  last: np.ndarray
  last_at: np.ndarray
  waiting: Parsed


def start_gaps(num_features: int) -> GapState:
  empty = Parsed(np.zeros((0, num_features)), [], np.zeros(0, np.int64))
  return GapState(np.full(num_features, np.nan), np.full(num_features, -1), empty)


def fill_gaps(state: GapState, parsed: Parsed, *, missing: str, columns: Columns,
              final: bool = False) -> tuple[GapState, Parsed]:
  """The rows that are complete once `parsed` has arrived, gaps filled as `missing` says;
  `final`: the input has ended, so nothing waits any more."""
  if missing not in MISSING:
    raise ValueError(f"data.missing={missing!r}: choose from {', '.join(MISSING)}.")
  if missing == "error":
    bad = ~np.isfinite(parsed.values)
    if bad.any():
      row, column = np.argwhere(bad)[0]
      raise DataError(
          f"{columns.path}: line {parsed.lines[row]}, column "
          f"{columns.header[columns.features[column]]!r} is empty or not finite "
          f"({int(bad.sum())} such cells in this part). Fill the gaps, or let them be filled: "
          "--missing=ffill (the last value) or --missing=interpolate.")
    return state, parsed
  block = _concat(state.waiting, parsed)
  values = np.where(np.isfinite(block.values), block.values, np.nan)
  filled, ready = values.copy(), len(values)
  for j in np.flatnonzero(np.isnan(values).any(axis=0)):
    known = np.flatnonzero(~np.isnan(values[:, j]))
    gaps = np.flatnonzero(np.isnan(values[:, j]))
    seen = np.isfinite(state.last[j])
    positions = np.concatenate([[state.last_at[j]], known]) if seen else known
    levels = np.concatenate([[state.last[j]], values[known, j]]) if seen else values[known, j]
    if not positions.size:  # no value of this column yet: its first one is awaited
      if final:
        raise DataError(f"{columns.path}: column {columns.header[columns.features[j]]!r} has "
                        "no value at all; the model needs every feature.")
      ready = min(ready, int(gaps[0]))
    elif missing == "ffill":
      filled[gaps, j] = levels[np.maximum(np.searchsorted(positions, gaps) - 1, 0)]
    else:
      filled[gaps, j] = np.interp(gaps, positions, levels)
      if not final and gaps[-1] > positions[-1]:  # waits for the column's next value
        ready = min(ready, int(gaps[gaps > positions[-1]][0]))
  last, last_at = state.last.copy(), state.last_at - ready
  for j in range(values.shape[1]):
    known = np.flatnonzero(~np.isnan(values[:ready, j]))
    if known.size:
      last[j], last_at[j] = values[known[-1], j], known[-1] - ready
  done = Parsed(filled[:ready], block.stamps[:ready], block.lines[:ready])
  return GapState(last, last_at, _take(block, slice(ready, None))), done


def _concat(a: Parsed, b: Parsed) -> Parsed:
  if not len(a.values):
    return b
  return Parsed(np.concatenate([a.values, b.values]), a.stamps + b.stamps,
                np.concatenate([a.lines, b.lines]))


def _take(parsed: Parsed, rows: slice) -> Parsed:
  return Parsed(parsed.values[rows], parsed.stamps[rows], parsed.lines[rows])
