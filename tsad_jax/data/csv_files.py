"""A train and a test CSV file with a header row, as `data.csv.*` describes them.

Feature columns are the named ones, or every column but the timestamp and
label columns. A timestamp column is dropped after checking that rows are
sorted by it. The label column (0/1; `label` unless data.csv.label_column
names another) is dropped from train and read from test; a test file without
it is unlabeled (its run reports scores and alarms, and says no labels were
given). Train and test must hold the same feature columns; test columns are
reordered to train's order.
"""

import csv
import functools
from pathlib import Path

import ml_collections
import numpy as np
import pandas as pd

from tsad_jax import config_names
from tsad_jax.data import cache
from tsad_jax.data import checks
from tsad_jax.data import rows as rows_lib
from tsad_jax.data.types import DataError
from tsad_jax.data.types import Dataset
from tsad_jax.data.types import Entity
from tsad_jax.data.types import segments_from_labels


def load(root: str, options: ml_collections.ConfigDict, entity: str = "", *,
         cache_dir: Path | None = None, missing: str = "error") -> Dataset:
  """Loads one entity from `options` (config.data.csv); `root` prefixes relative paths.

  Args:
    root: data.root; relative file names are taken from there (or the current
      folder when empty).
    options: train_file, test_file, feature_columns, timestamp_column,
      label_column.
    entity: the entity's name; empty: the test file's stem.
    cache_dir: where parsed files are cached; None: no caching.
    missing: gaps (empty, NaN or inf cells): refused ("error"), or filled
      ("ffill", "interpolate"; `rows.fill_gaps`).
  """
  train_path = _resolve(root, options.train_file, "train_file")
  test_path = _resolve(root, options.test_file, "test_file")
  columns = dict(features=tuple(config_names.comma_list(options.feature_columns)),
                 timestamp=options.timestamp_column.strip(), label=options.label_column.strip(),
                 missing=missing)
  key = repr(sorted(columns.items()))
  parse = functools.partial(read_table, **columns)
  train = cache.cached(train_path, parse, directory=cache_dir, key=key)
  test = cache.cached(test_path, parse, directory=cache_dir, key=key)
  names = tuple(str(name) for name in train["features"])
  test_values = _align(test, names, train_path=train_path, test_path=test_path)
  labels = test["labels"].astype(np.uint8) if "labels" in test else None
  return Dataset(
      name="csv",
      entities=(Entity(name=entity or test_path.stem,
                       train=train["values"].astype(np.float32),
                       test=test_values.astype(np.float32),
                       labels=labels,
                       segments=() if labels is None else segments_from_labels(labels),
                       train_source=str(train_path), test_source=str(test_path)),),
      feature_names=names)


def read_table(path: Path, *, features: tuple[str, ...], timestamp: str, label: str,
               missing: str = "error") -> dict[str, np.ndarray]:
  """Parses and checks one CSV file; gaps in the features as `missing` says.

  Returns:
    {"values": (T, D) float64, "features": (D,) column names, and "labels":
    (T,) uint8 when the label column is present}.
  """
  header, rows, lines = _read_rows(path)
  chosen = _feature_columns(header, features, timestamp=timestamp, label=label, path=path)
  index = {name: i for i, name in enumerate(header)}
  if timestamp:
    if timestamp not in index:
      raise DataError(f"{path} has no timestamp column {timestamp!r} (columns: "
                      f"{checks.listing(header)}); fix --config.data.csv.timestamp_column.")
    _check_sorted([row[index[timestamp]] for row in rows], lines, column=timestamp, path=path)
  values = np.stack([_numbers(rows, lines, index[name], name, path) for name in chosen], axis=1)
  if missing == "error":
    checks.check_finite(values, what="feature values", path=path, lines=lines,
                        fix="Fill them, or set --config.data.missing=ffill (or interpolate).")
  else:
    where = rows_lib.Columns(str(path), tuple(header), tuple(index[n] for n in chosen), None)
    _, filled = rows_lib.fill_gaps(rows_lib.start_gaps(len(chosen)),
                                   rows_lib.Parsed(values, [""] * len(values), np.array(lines)),
                                   missing=missing, columns=where, final=True)
    values = filled.values
  out = {"values": values, "features": np.array(chosen)}
  if label in index:
    labels = _numbers(rows, lines, index[label], label, path)
    out["labels"] = checks.check_labels(labels, test_length=len(values), path=path)
  return out


def _read_rows(path: Path) -> tuple[list[str], list[list[str]], list[int]]:
  with open(path, newline="", encoding="utf-8") as f:
    reader = csv.reader(f)
    header = [name.strip() for name in next(reader, [])]
    rows, lines = [], []
    for row in reader:
      if not row:
        continue
      if len(row) != len(header):
        raise DataError(f"{path}: line {reader.line_num} has {len(row)} columns but the header "
                        f"has {len(header)}; every row needs one value per column. Fix or remove "
                        "that line.")
      rows.append(row)
      lines.append(reader.line_num)
  if not header:
    raise DataError(f"{path} is empty; it needs a header row and at least one row of values.")
  if not rows:
    raise DataError(f"{path} has a header but no rows of values; supply at least one row.")
  repeated = sorted({name for name in header if header.count(name) > 1})
  if repeated:
    raise DataError(f"{path} repeats the columns {checks.listing(repeated)}; rename them.")
  return header, rows, lines


def _feature_columns(header: list[str], features: tuple[str, ...], *, timestamp: str, label: str,
                     path: Path) -> list[str]:
  if features:
    missing = [name for name in features if name not in header]
    if missing:
      raise DataError(f"{path} lacks the feature columns {checks.listing(missing)} (it has "
                      f"{checks.listing(header)}); fix --config.data.csv.feature_columns.")
    return list(features)
  chosen = [name for name in header if name not in (timestamp, label)]
  if not chosen:
    raise DataError(f"{path} has no feature columns besides the timestamp and label columns.")
  return chosen


def _numbers(rows: list[list[str]], lines: list[int], column: int, name: str,
             path: Path) -> np.ndarray:
  cells = [row[column].strip() or "nan" for row in rows]  # an empty cell is a gap
  try:
    return np.array(cells, dtype=np.float64)
  except ValueError:
    pass
  for row, line in zip(rows, lines, strict=True):
    try:
      float(row[column] or "nan")
    except ValueError:
      raise DataError(f"{path}: line {line}, column {name!r}: {row[column]!r} is not a number. "
                      "Every feature and label value must be numeric; fix that line.") from None
  raise AssertionError("unreachable")


def _check_sorted(stamps: list[str], lines: list[int], *, column: str, path: Path) -> None:
  times = rows_lib.parse_times(stamps, lines, column=column, path=path)
  backwards = np.flatnonzero(times[1:] < times[:-1])
  if backwards.size:
    i = backwards[0] + 1
    raise DataError(f"{path}: rows are not sorted by {column!r}: line {lines[i]} "
                    f"({stamps[i]!r}) comes before line {lines[i - 1]} ({stamps[i - 1]!r}) in "
                    "time. Sort the file by its timestamp column.")


def _align(test: dict[str, np.ndarray], names: tuple[str, ...], *, train_path: Path,
           test_path: Path) -> np.ndarray:
  """Test values with columns in train's order; refuses differing feature columns."""
  test_names = [str(name) for name in test["features"]]
  if sorted(test_names) != sorted(names):
    only_train = [n for n in names if n not in test_names]
    only_test = [n for n in test_names if n not in names]
    raise DataError(
        f"Train and test feature columns differ: only in {train_path}: "
        f"{checks.listing(only_train)}; only in {test_path}: {checks.listing(only_test)}. "
        "Give both files the same feature columns or list them in "
        "--config.data.csv.feature_columns.")
  order = [test_names.index(name) for name in names]
  return test["values"][:, order]


def _resolve(root: str, name: str, field: str) -> Path:
  if not name:
    raise DataError(f"data.csv.{field} is empty; set --config.data.csv.{field}=path/to/file.csv "
                    "(relative to data.root, or absolute).")
  path = Path(name).expanduser()
  if not path.is_absolute() and root:
    path = Path(root).expanduser() / path
  nearby = sorted(p.name for p in path.parent.glob("*.csv")) if path.parent.is_dir() else []
  checks.require_file(
      path, what=f"CSV file (data.csv.{field})",
      fix=f"Set --config.data.csv.{field} (relative to data.root, or absolute). CSV files in "
      f"{path.parent}: {checks.listing(nearby)}.")
  return path



def write_series(path: str | Path, series: np.ndarray, feature_names, *, start: str,
                 points_per_day: float | None = None) -> None:
  """A (T, D) series as a CSV file: a `timestamp` column, then the features; refuses to
  overwrite an existing file."""
  path = Path(path)
  if path.exists():
    raise FileExistsError(f"{path} exists; choose another --output (it is not overwritten).")
  seconds = 86_400 / points_per_day if points_per_day else 60.0
  frame = pd.DataFrame(series, columns=list(feature_names))
  stamps = pd.Timestamp(start) + pd.to_timedelta(np.arange(len(frame)) * seconds, unit="s")
  frame.insert(0, "timestamp", stamps.strftime("%Y-%m-%d %H:%M:%S"))
  frame.to_csv(path, index=False, float_format="%.9g")  # float32 values read back exactly
