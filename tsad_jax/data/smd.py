"""SMD, the Server Machine Dataset (Su et al., KDD 2019), in its original layout, and ASD,
the Application Server Dataset (Li et al., InterFusion, KDD 2021: 12 servers `omi-1` ..
`omi-12`, 19 metrics, one row every 5 minutes), which comes in the same layout.

    <root>/train/<machine>.txt                comma-separated floats, one row per interval
    <root>/test/<machine>.txt
    <root>/test_label/<machine>.txt           one 0/1 per test row
    <root>/interpretation_label/<machine>.txt optional; lines "start-end:dim,dim,..."

Interpretation ranges are 0-based and end-exclusive ("246-252" covers test
rows 246..251, exactly the label run), dims are 1-based; both become 0-based
inclusive here. Each machine is one entity.
"""

import os
from pathlib import Path
import re
from typing import NamedTuple
import warnings

import numpy as np

from tsad_jax.data import cache
from tsad_jax.data import checks
from tsad_jax.data.types import DataError
from tsad_jax.data.types import Dataset
from tsad_jax.data.types import Entity
from tsad_jax.data.types import Segment
from tsad_jax.data.types import segments_from_labels

FOLDER = "ServerMachineDataset"
ASD_FOLDER = "ASD"

_RANGE = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*:\s*(\d+(?:\s*,\s*\d+)*)\s*$")


class Interpretation(NamedTuple):
  """Test rows start..end (0-based, inclusive) are explained by features `dims` (0-based)."""

  start: int
  end: int
  dims: tuple[int, ...]


ROWS_PER_DAY = {"smd": 24 * 60, "asd": 24 * 12}  # SMD: a row a minute; ASD: every 5 minutes


def machines(root: os.PathLike) -> list[str]:
  """Every machine with a training file, sorted."""
  return sorted(path.stem for path in (Path(root) / "train").glob("*.txt"))


def load(root: os.PathLike, entity: str = "all", *, cache_dir: Path | None = None,
         dataset: str = "smd") -> Dataset:
  """Loads the machines named by `entity` ("machine-1-6", a comma list, or "all") of
  `dataset` ("smd", or "asd": servers "omi-1" ..)."""
  root = Path(root)
  folder = ASD_FOLDER if dataset == "asd" else FOLDER
  checks.require_dir(
      root / "train", what=f"{dataset.upper()} train folder",
      fix=f"data.root must be the {folder} folder itself (holding train/, test/, test_label/).")
  available = machines(root)
  names = checks.select_entities(entity, available, where=str(root / "train"))
  entities = tuple(load_machine(root, name, cache_dir=cache_dir) for name in names)
  width = checks.check_same_features({e.name: e.train.shape[1] for e in entities}, where=str(root))
  return Dataset(name=dataset, entities=entities,
                 feature_names=tuple(f"f{i}" for i in range(width)),
                 points_per_day=ROWS_PER_DAY[dataset])


def load_machine(root: os.PathLike, name: str, *, cache_dir: Path | None = None) -> Entity:
  """One machine's train and test series, labels and labelled segments."""
  root = Path(root)
  paths = {part: root / part / f"{name}.txt" for part in ("train", "test", "test_label")}
  for part in ("train", "test"):
    checks.require_file(paths[part], what=f"SMD {part} file",
                        available=sorted(p.stem for p in paths[part].parent.glob("*.txt")))
  train = _series(paths["train"], "train series", cache_dir)
  test = _series(paths["test"], "test series", cache_dir)
  checks.check_same_width(train, test, train_path=paths["train"], test_path=paths["test"])
  if not paths["test_label"].is_file():  # unlabeled: scores and alarms, no metrics
    return Entity(name=name, train=train.astype(np.float32), test=test.astype(np.float32),
                  labels=None, train_source=str(paths["train"]),
                  test_source=str(paths["test"]))
  labels = checks.check_labels(
      cache.cached(paths["test_label"], read_matrix, directory=cache_dir, key="smd")["values"],
      test_length=len(test), path=paths["test_label"])
  segments = segments_from_labels(labels)
  interpretation_path = root / "interpretation_label" / f"{name}.txt"
  if interpretation_path.is_file():
    ranges = read_interpretation(
        interpretation_path, num_features=test.shape[1], test_length=len(test))
    segments = attach_dims(segments, ranges)
  return Entity(name=name, train=train.astype(np.float32), test=test.astype(np.float32),
                labels=labels, segments=segments,
                train_source=str(paths["train"]), test_source=str(paths["test"]))


def read_matrix(path: Path) -> dict[str, np.ndarray]:
  """Parses a comma-separated file of numbers into {"values": (T, D) float64}."""
  try:
    with warnings.catch_warnings():
      warnings.simplefilter("ignore", UserWarning)  # An empty file; refused by the caller.
      values = np.loadtxt(path, delimiter=",", dtype=np.float64, ndmin=2, comments=None)
  except ValueError:
    raise checks.explain_text_table(path) from None
  return {"values": values}


def read_interpretation(path: os.PathLike, *, num_features: int,
                        test_length: int) -> list[Interpretation]:
  """Parses an interpretation_label file into 0-based inclusive ranges with 0-based dims."""
  ranges = []
  with open(path, encoding="utf-8") as f:
    for number, line in enumerate(f, start=1):
      if line.strip():
        ranges.append(_parse_range(line, path=path, number=number, num_features=num_features,
                                   test_length=test_length))
  return ranges


def _parse_range(line: str, *, path: os.PathLike, number: int, num_features: int,
                 test_length: int) -> Interpretation:
  match = _RANGE.match(line)
  if not match:
    raise DataError(f"{path}: line {number} is {line.strip()!r}; expected 'start-end:dim,dim,...' "
                    "(e.g. '246-252:1,2,3'). Fix or remove that line.")
  start, end = int(match[1]), int(match[2])
  dims = tuple(sorted({int(d) for d in match[3].split(",")}))
  if end < start or end > test_length:
    raise DataError(f"{path}: line {number} covers rows {start}-{end}, outside the "
                    f"{test_length}-row test series (0-based, end-exclusive). Fix that line.")
  if dims[0] < 1 or dims[-1] > num_features:
    raise DataError(f"{path}: line {number} names dims {checks.listing(dims)}; dims are 1-based "
                    f"and this machine has {num_features} features. Fix that line.")
  return Interpretation(start, max(start, end - 1), tuple(d - 1 for d in dims))


def attach_dims(segments: tuple[Segment, ...],
                ranges: list[Interpretation]) -> tuple[Segment, ...]:
  """Gives each segment the union of the dims of the ranges overlapping it."""
  out = []
  for segment in segments:
    dims = set()
    for r in ranges:
      if r.start <= segment.end and segment.start <= r.end:
        dims.update(r.dims)
    out.append(segment._replace(dims=tuple(sorted(dims))))
  return tuple(out)


def _series(path: Path, what: str, cache_dir: Path | None) -> np.ndarray:
  values = cache.cached(path, read_matrix, directory=cache_dir, key="smd")["values"]
  checks.check_matrix(values, what=what, path=path)
  checks.check_finite(values, what=what, path=path, lines=np.arange(1, len(values) + 1))
  return values
