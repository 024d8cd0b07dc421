"""Validation shared by the loaders: each failure is a `DataError` naming the file and the fix."""

from collections.abc import Iterable
from collections.abc import Sequence
import os

import numpy as np

from tsad_jax import config_names
from tsad_jax.data.types import DataError

_MAX_LISTED = 10


def listing(items: Iterable[object], limit: int = _MAX_LISTED) -> str:
  """"a, b, c" with at most `limit` items and a count of the rest."""
  items = [str(item) for item in items]
  if not items:
    return "(none)"
  shown = ", ".join(items[:limit])
  return shown if len(items) <= limit else f"{shown}, ... ({len(items) - limit} more)"


def require_file(path: os.PathLike, *, what: str, available: Sequence[str] = (),
                 fix: str = "Check data.root and data.entity, or restore the file.") -> None:
  """Refuses a missing file, listing the entities that do exist."""
  if os.path.isfile(path):
    return
  hint = f" Entities that exist: {listing(available)}." if available else ""
  raise DataError(f"Missing {what}: {path} does not exist.{hint} {fix}")


def require_dir(path: os.PathLike, *, what: str, fix: str) -> None:
  if not os.path.isdir(path):
    raise DataError(f"Missing {what}: {path} is not a folder. {fix}")


def unknown_entities(requested: Sequence[str], available: Sequence[str], *, where: str,
                     note: str = "") -> None:
  """Refuses entity names that are not in `available`."""
  unknown = [name for name in requested if name not in available]
  if unknown:
    raise DataError(
        f"Unknown entity {listing(unknown)} in {where}.{note} Available: "
        f"{listing(available, limit=100)}. Set --config.data.entity to one of them, a "
        "comma-separated list, or 'all'.")


def explain_text_table(path: os.PathLike, *, delimiter: str = ",") -> DataError:
  """Finds the first ragged or non-numeric line of a delimited text file of numbers."""
  expected, first_line = None, 0
  with open(path, encoding="utf-8", errors="replace") as f:
    for number, line in enumerate(f, start=1):
      if not line.strip():
        continue
      fields = line.rstrip("\r\n").split(delimiter)
      if expected is None:
        expected, first_line = len(fields), number
      elif len(fields) != expected:
        return DataError(
            f"{path}: line {number} has {len(fields)} columns but line {first_line} has "
            f"{expected}; every line must have the same number of {delimiter!r}-separated values. "
            "Fix or remove that line.")
      for column, field in enumerate(fields, start=1):
        try:
          float(field)
        except ValueError:
          return DataError(
              f"{path}: line {number}, column {column}: {field.strip()!r} is not a number. "
              "Every value must be numeric; fix or remove that line.")
  return DataError(f"{path} could not be read as a table of numbers; check its format.")


def check_not_empty(array: np.ndarray, *, what: str, path: os.PathLike) -> None:
  if array.size == 0:
    raise DataError(f"{what} in {path} is empty (shape {array.shape}); "
                    "supply a file with at least one row of values.")


def check_matrix(array: np.ndarray, *, what: str, path: os.PathLike) -> None:
  """Refuses anything but a non-empty 2-D (time, features) array."""
  if array.ndim != 2:
    raise DataError(f"{what} in {path} has shape {array.shape}; expected 2-D "
                    "(time, features). Save it with one row per time step.")
  check_not_empty(array, what=what, path=path)


def check_finite(array: np.ndarray, *, what: str, path: os.PathLike,
                 lines: Sequence[int] | None = None,
                 fix: str = "Impute or drop them before loading.") -> None:
  """Refuses NaN/inf, naming how many and where.

  Args:
    array: (T,) or (T, D) values.
    what: e.g. "train series".
    path: the file the values come from.
    lines: the file line of each row, for text files; None reports 0-based
      row indices instead.
  """
  bad = ~np.isfinite(array)
  if not bad.any():
    return
  bad = bad.reshape(len(array), -1)
  rows = np.flatnonzero(bad.any(axis=1))
  columns = np.flatnonzero(bad.any(axis=0))
  where = (f"lines {listing(np.asarray(lines)[rows])}" if lines is not None
           else f"rows {listing(rows)}")
  raise DataError(
      f"{what} in {path} has {int(bad.sum())} NaN/inf values in {len(rows)} rows ({where}) "
      f"and {len(columns)} columns (0-based columns {listing(columns)}). {fix}")


def check_same_width(train: np.ndarray, test: np.ndarray, *, train_path: os.PathLike,
                     test_path: os.PathLike) -> None:
  if train.shape[1] != test.shape[1]:
    raise DataError(
        f"Train and test feature counts differ: {train_path} has {train.shape[1]} columns, "
        f"{test_path} has {test.shape[1]}. Both must hold the same features in the same order.")


def check_labels(labels: np.ndarray, *, test_length: int, path: os.PathLike) -> np.ndarray:
  """Checks point labels against the test series; returns them as (T,) uint8."""
  labels = np.asarray(labels)
  if labels.ndim == 2 and labels.shape[1] == 1:
    labels = labels[:, 0]
  if labels.ndim != 1:
    raise DataError(f"Labels in {path} have shape {labels.shape}; expected one 0/1 per line.")
  if len(labels) != test_length:
    raise DataError(
        f"Labels in {path} have {len(labels)} rows but the test series has {test_length}; "
        "there must be exactly one label per test row.")
  bad = np.flatnonzero((labels != 0) & (labels != 1))
  if bad.size:
    values = listing(np.unique(labels[bad]))
    raise DataError(
        f"Labels in {path} must be 0 or 1; found {values} in {bad.size} rows "
        f"(0-based rows {listing(bad)}). Use 1 for anomalous points, 0 otherwise.")
  return labels.astype(np.uint8)


def check_length(array: np.ndarray, min_length: int, *, what: str, path: os.PathLike) -> None:
  """Refuses a series shorter than `min_length` (e.g. the window length)."""
  if len(array) < min_length:
    raise DataError(
        f"{what} in {path} has {len(array)} time steps, fewer than the {min_length} needed "
        "(the window length). Use a smaller --config.data.window or a longer series.")


def check_same_features(widths: dict[str, int], *, where: str) -> int:
  """Refuses entities whose feature counts differ; returns the common count."""
  counts = set(widths.values())
  if len(counts) > 1:
    described = listing(f"{name}: {width}" for name, width in widths.items())
    raise DataError(
        f"Entities loaded together from {where} must share their features, but their "
        f"feature counts differ ({described}). Load them separately.")
  return counts.pop()


def select_entities(entity: str, available: Sequence[str], *, where: str,
                    note: str = "") -> list[str]:
  """Entity names from `data.entity`: "" or "all" is every available one, else a comma list."""
  if entity.strip().lower() in ("", "all"):
    if not available:
      raise DataError(f"No entities found in {where}; check data.root.")
    return list(available)
  names = list(dict.fromkeys(config_names.comma_list(entity)))
  unknown_entities(names, available, where=where, note=note)
  return names
