"""NASA SMAP and MSL telemetry (Hundman et al., KDD 2018) in the telemanom layout.

    <root>/train/<channel>.npy     (T, D) floats, rows = time; column 0 is the
    <root>/test/<channel>.npy      telemetry value, the others encode commands
    <root>/labeled_anomalies.csv   chan_id, spacecraft, anomaly_sequences
                                   ("[[start, end], ...]", 0-based inclusive), class, num_values

`data.entity` "all" gives ONE entity per spacecraft: every channel's train
series concatenated, every test series concatenated (labels shifted), in the
order of labeled_anomalies.csv, as OmniAnomaly and MTAD-GAT evaluate it. Each
channel's series stay parts of their own (`Entity.train_parts`, `test_parts`),
so validation and calibration hold out every channel's tail, not the last
channels', and each channel's test scores are scaled by its own tail's.

The published labeled_anomalies.csv lists SMAP's P-2 twice with different
anomaly sequences. Such a channel is left out of "all" (as
OmniAnomaly and MTAD-GAT leave out P-2: SMAP is then 53 channels, 135183 train
and 427617 test rows); asked for by name, it gets the union of its rows'
sequences. Both cases warn. Channel files without a row in the CSV (T-10 in
the published data) have no labels and are never loaded.
"""

import csv
import json
import os
from pathlib import Path
from typing import NamedTuple
import warnings

import numpy as np

from tsad_jax import config_names
from tsad_jax.data import checks
from tsad_jax.data.types import DataError
from tsad_jax.data.types import Dataset
from tsad_jax.data.types import Entity
from tsad_jax.data.types import Segment
from tsad_jax.data.types import segments_from_labels

FOLDER = "SMAP_MSL"
LABELS_FILE = "labeled_anomalies.csv"
SPACECRAFT = {"smap": "SMAP", "msl": "MSL"}

_COLUMNS = ("chan_id", "spacecraft", "anomaly_sequences", "num_values")


class Row(NamedTuple):
  """One row of labeled_anomalies.csv; `line` is its line in the file."""

  chan_id: str
  spacecraft: str
  sequences: tuple[tuple[int, int], ...]
  num_values: int
  line: int


def load(root: os.PathLike, dataset: str, entity: str = "all") -> Dataset:
  """Loads SMAP or MSL (`dataset` "smap" | "msl") channels named by `entity`.

  Args:
    root: the SMAP_MSL folder.
    dataset: "smap" or "msl".
    entity: a channel ("P-1"), a comma list of channels (one entity each), or
      "all" (or "") for the whole spacecraft as one concatenated entity.
  """
  root = Path(root)
  spacecraft = SPACECRAFT[dataset]
  labels_path = root / LABELS_FILE
  rows = _label_rows(root)
  own = [row for row in rows if row.spacecraft == spacecraft]
  listed = _names(own)
  if entity.strip().lower() in ("", "all"):
    channel = _whole_spacecraft(root, spacecraft, own, labels_path)
    entities = (channel,)
  else:
    names = checks.select_entities(entity, listed, where=str(labels_path),
                                   note=_unknown_note(root, entity, rows, spacecraft))
    entities = tuple(_channel(root, name, own, labels_path) for name in names)
  width = checks.check_same_features({e.name: e.train.shape[1] for e in entities},
                                     where=str(root))
  return Dataset(name=dataset, entities=entities, feature_names=feature_names(width))


def channels(root: os.PathLike, dataset: str) -> list[str]:
  """The channels of `dataset` ("smap" | "msl") in labeled_anomalies.csv, in its order."""
  return _names([row for row in _label_rows(Path(root)) if row.spacecraft == SPACECRAFT[dataset]])


def _names(rows: list[Row]) -> list[str]:
  return list(dict.fromkeys(row.chan_id for row in rows))


def _label_rows(root: Path) -> list[Row]:
  labels_path = root / LABELS_FILE
  checks.require_file(labels_path, what=f"SMAP/MSL label file (data.root must be the {FOLDER} "
                      "folder itself)")
  return read_rows(labels_path)


def feature_names(width: int) -> tuple[str, ...]:
  return ("value",) + tuple(f"command_{i}" for i in range(1, width))


def read_rows(path: os.PathLike) -> list[Row]:
  """Parses labeled_anomalies.csv (no eval: sequences are read as JSON)."""
  with open(path, newline="", encoding="utf-8") as f:
    reader = csv.DictReader(f)
    missing = [c for c in _COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
      raise DataError(f"{path} lacks the columns {checks.listing(missing)}; it needs "
                      f"{', '.join(_COLUMNS)} (the telemanom labeled_anomalies.csv).")
    return [_parse_row(record, path=path, line=reader.line_num) for record in reader]


def _parse_row(record: dict[str, str], *, path: os.PathLike, line: int) -> Row:
  where = f"{path}: line {line} ({record.get('chan_id')})"
  try:
    sequences = json.loads(record["anomaly_sequences"])
    num_values = int(record["num_values"])
    pairs = tuple((int(start), int(end)) for start, end in sequences)
  except (TypeError, ValueError) as error:
    raise DataError(f"{where}: cannot read anomaly_sequences {record['anomaly_sequences']!r} "
                    f"or num_values {record['num_values']!r} ({error}); anomaly_sequences must "
                    "look like [[start, end], ...] and num_values be an integer.") from None
  for start, end in pairs:
    if not 0 <= start <= end:
      raise DataError(f"{where}: anomaly sequence [{start}, {end}] is not a 0-based inclusive "
                      "range with start <= end. Fix that row.")
  return Row(record["chan_id"].strip(), record["spacecraft"].strip(), pairs, num_values, line)


def _whole_spacecraft(root: Path, spacecraft: str, own: list[Row], labels_path: Path) -> Entity:
  sequences = {}
  for row in own:
    sequences.setdefault(row.chan_id, set()).add(row.sequences)
  conflicting = [name for name, seen in sequences.items() if len(seen) > 1]
  if conflicting:
    warnings.warn(
        f"{labels_path} lists {checks.listing(conflicting)} more than once with different "
        f"anomaly sequences; leaving them out of {spacecraft} 'all' (as OmniAnomaly and "
        "MTAD-GAT do). Ask for them by name to load them with the union of the sequences.",
        stacklevel=3)
  names = [name for name in sequences if name not in conflicting]
  if not names:
    raise DataError(f"{labels_path} lists no {spacecraft} channels; check the file.")
  channels = [_channel(root, name, own, labels_path) for name in names]
  checks.check_same_features({c.name: c.train.shape[1] for c in channels}, where=str(root))
  offsets = np.cumsum([0] + [len(c.test) for c in channels])
  segments = tuple(
      Segment(s.start + int(offset), s.end + int(offset), s.dims)
      for channel, offset in zip(channels, offsets[:-1], strict=True) for s in channel.segments)
  return Entity(name=spacecraft,
                train=np.concatenate([c.train for c in channels]),
                test=np.concatenate([c.test for c in channels]),
                labels=np.concatenate([c.labels for c in channels]),
                segments=segments,
                train_source=str(root / "train"), test_source=str(root / "test"),
                train_parts=tuple(len(c.train) for c in channels),
                test_parts=tuple(len(c.test) for c in channels))


def _channel(root: Path, name: str, own: list[Row], labels_path: Path) -> Entity:
  rows = [row for row in own if row.chan_id == name]
  if len({row.sequences for row in rows}) > 1:
    warnings.warn(f"{labels_path} lists {name} on lines {checks.listing(r.line for r in rows)}; "
                  "using the union of their anomaly sequences.", stacklevel=4)
  if len({row.num_values for row in rows}) > 1:
    raise DataError(f"{labels_path} gives {name} different num_values on lines "
                    f"{checks.listing(r.line for r in rows)}; fix the file.")
  paths = {part: root / part / f"{name}.npy" for part in ("train", "test")}
  listed = list(dict.fromkeys(row.chan_id for row in own))
  for part, path in paths.items():
    checks.require_file(path, what=f"{part} file of channel {name}",
                        available=[c for c in listed if (root / part / f"{c}.npy").is_file()])
  train = _series(paths["train"], "train series")
  test = _series(paths["test"], "test series")
  checks.check_same_width(train, test, train_path=paths["train"], test_path=paths["test"])
  if rows[0].num_values != len(test):
    raise DataError(
        f"{labels_path}: line {rows[0].line} gives {name} num_values={rows[0].num_values} but "
        f"{paths['test']} has {len(test)} rows; the label file and the test series disagree. "
        "Fix num_values or replace the test file.")
  labels = np.zeros(len(test), dtype=np.uint8)
  for row in rows:
    for start, end in row.sequences:
      if end >= len(test):
        raise DataError(
            f"{labels_path}: line {row.line} gives {name} the anomaly [{start}, {end}] beyond "
            f"its {len(test)}-row test series {paths['test']}. Fix that row.")
      labels[start:end + 1] = 1
  return Entity(name=name, train=train.astype(np.float32), test=test.astype(np.float32),
                labels=labels, segments=segments_from_labels(labels),
                train_source=str(paths["train"]), test_source=str(paths["test"]))


def _series(path: Path, what: str) -> np.ndarray:
  try:
    values = np.load(path, allow_pickle=False)
  except (OSError, ValueError) as error:
    raise DataError(f"{path} is not a readable numeric .npy file ({error}); "
                    "save it with np.save from a float array.") from None
  if not np.issubdtype(values.dtype, np.number):
    raise DataError(f"{what} in {path} has dtype {values.dtype}; save a float array instead.")
  checks.check_matrix(values, what=what, path=path)
  checks.check_finite(values, what=what, path=path)
  return values.astype(np.float64)


def _unknown_note(root: Path, entity: str, rows: list[Row], spacecraft: str) -> str:
  notes = []
  other = {row.chan_id: row.spacecraft for row in rows if row.spacecraft != spacecraft}
  for name in config_names.comma_list(entity):
    if name in other:
      notes.append(f" {name} is an {other[name]} channel: set "
                   f"--config.data.dataset={other[name].lower()}.")
    elif name and name not in {row.chan_id for row in rows} and (
        root / "test" / f"{name}.npy").is_file():
      notes.append(f" {name} has data files but no row in {LABELS_FILE}, so no labels.")
  return "".join(notes)
