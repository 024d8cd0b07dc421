"""From a loaded Dataset to what training and scoring consume.

Each entity is normalised with statistics fitted on its own training series,
its training series is split in time into a fitting and a validation part, and
all entities are concatenated into one (T, D) train and one test array.
"""

import dataclasses

import ml_collections
import numpy as np

from tsad_jax.data import checks
from tsad_jax.data import normalize
from tsad_jax.data import windows
from tsad_jax.data.types import Dataset


@dataclasses.dataclass(frozen=True)
class Prepared:
  """Normalised, concatenated series and the windows cut from them.

  Attributes:
    train: (sum of train lengths, D) float32.
    test: (sum of test lengths, D) float32.
    train_lengths, test_lengths: per entity, in `dataset.entities` order.
    train_starts: starts (into `train`) of the windows the model fits on.
    val_starts: starts of the validation windows (the end of each entity's
      training series); empty when data.val_fraction is 0.
  """

  dataset: Dataset
  train: np.ndarray
  test: np.ndarray
  train_lengths: tuple[int, ...]
  test_lengths: tuple[int, ...]
  train_starts: np.ndarray
  val_starts: np.ndarray

  @property
  def num_features(self) -> int:
    return self.train.shape[1]

  def split_test(self, per_timestep: np.ndarray) -> list[np.ndarray]:
    """Splits a (sum of test lengths, ...) array into one array per entity."""
    return np.split(per_timestep, np.cumsum(self.test_lengths)[:-1])

  def split_train(self, per_timestep: np.ndarray) -> list[np.ndarray]:
    return np.split(per_timestep, np.cumsum(self.train_lengths)[:-1])


def fit_and_val_starts(parts, data: ml_collections.ConfigDict):
  """Window starts of the fitting and validation parts of concatenated train series.

  `parts` holds, per entity, the lengths of its training series' parts
  (`Entity.parts`); each part's last `data.val_fraction` is validation, and no
  training window reaches into a validation tail.
  """
  fit_starts, val_starts, offset = [np.zeros(0, np.int32)], [np.zeros(0, np.int32)], 0
  for length in (length for entity in parts for length in entity):
    fit_length, val_length = windows.split_train_val(
        length, window=data.window, val_fraction=data.val_fraction)
    fit_starts.append(offset + windows.window_starts(
        [fit_length], window=data.window, stride=data.train_stride))
    if val_length:
      val_starts.append(offset + fit_length + windows.window_starts(
          [val_length], window=data.window, stride=data.train_stride))
    offset += length
  return np.concatenate(fit_starts).astype(np.int32), np.concatenate(val_starts).astype(np.int32)


def prepare(dataset: Dataset, data: ml_collections.ConfigDict) -> Prepared:
  """Normalises, splits and windows `dataset` as `data` (config.data) says."""
  trains, tests = [], []
  for entity in dataset.entities:
    stats = normalize.fit(entity.train, data.normalize, clip=data.minmax_clip)
    trains.append(normalize.apply(stats, entity.train).astype(np.float32))
    tests.append(normalize.apply(stats, entity.test).astype(np.float32))
    checks.check_length(entity.train, data.window, what=f"the train series of {entity.name}",
                        path=entity.train_source)
    checks.check_length(entity.test, data.window, what=f"the test series of {entity.name}",
                        path=entity.test_source)
  train_starts, val_starts = fit_and_val_starts([e.parts for e in dataset.entities], data)
  return Prepared(
      dataset=dataset,
      train=np.concatenate(trains),
      test=np.concatenate(tests),
      train_lengths=tuple(len(t) for t in trains),
      test_lengths=tuple(len(t) for t in tests),
      train_starts=train_starts,
      val_starts=val_starts)
