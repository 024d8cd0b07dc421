"""Containers shared by every loader: one entity's series and a whole data set."""

import dataclasses
from typing import NamedTuple

import numpy as np

from tsad_jax.metrics.segments import anomaly_segments


class DataError(ValueError):
  """Bad input data: the message names the file and says how to fix it."""


class Segment(NamedTuple):
  """One labelled anomaly segment, 0-based inclusive test-row indices.

  `dims` are the 0-based features that explain it (SMD `interpretation_label`);
  empty when the data set does not say.
  """

  start: int
  end: int
  dims: tuple[int, ...] = ()


@dataclasses.dataclass(frozen=True)
class Entity:
  """One monitored entity (an SMD machine, a SMAP channel, a CSV file pair).

  Attributes:
    name: entity id, e.g. "machine-1-6".
    train: (T_train, D) float32, raw (not normalised), finite.
    test: (T_test, D) float32, raw, finite.
    labels: (T_test,) uint8 0/1 point labels of the test series, or None where none
      were given (the run then reports scores, thresholds and alarms, no metrics).
    segments: labelled anomaly segments of the test series, with the
      explaining features where the data set gives them.
    train_source, test_source: where the series came from (a file or folder),
      for error messages.
    train_parts: lengths of the separately recorded series `train` concatenates
      (a whole spacecraft: one per channel), in order; empty for one series.
      Each part's own tail is held out for validation and calibration.
    test_parts: the same for `test`, part for part (empty for one series): each
      test part's scores are scaled by its own training part's calibration scores.
  """

  name: str
  train: np.ndarray
  test: np.ndarray
  labels: np.ndarray | None
  segments: tuple[Segment, ...] = ()
  train_source: str = "generated"
  test_source: str = "generated"
  train_parts: tuple[int, ...] = ()
  test_parts: tuple[int, ...] = ()

  @property
  def parts(self) -> tuple[int, ...]:
    """The lengths of the training series' parts (one part: its whole length)."""
    return self.train_parts or (len(self.train),)


@dataclasses.dataclass(frozen=True)
class Dataset:
  """A data set: one or several entities sharing the same feature columns.

  `points_per_day` is the sampling rate where the data set states it (SMD: one
  row a minute), for false alarms per day; None where it is unknown.
  """

  name: str
  entities: tuple[Entity, ...]
  feature_names: tuple[str, ...]
  points_per_day: float | None = None

  @property
  def num_features(self) -> int:
    return len(self.feature_names)


def segments_from_labels(labels: np.ndarray) -> tuple[Segment, ...]:
  """The contiguous runs of 1 in (T,) 0/1 point labels, as dim-less segments."""
  return tuple(Segment(start, end) for start, end in anomaly_segments(labels))
