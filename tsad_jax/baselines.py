"""Cheap baselines every results table carries: a deep model must beat them.

Each is fitted on an entity's raw training series (the part a model trains
on) and scores any series of the same features per feature, higher = more
anomalous; the per-feature scores then go through the same smoothing,
scaling, calibration and thresholds as a model's (`alarms.calibrate`). With
`eval.feature_scaling = "none"` and the sum, they are the plain textbook
detectors: `pca`'s total is what scikit-learn's StandardScaler and PCA give.
"""

from collections.abc import Callable

import ml_collections
import numpy as np
from sklearn import decomposition

from tsad_jax import alarms
from tsad_jax.data.types import Entity

Scorer = Callable[[np.ndarray], np.ndarray]


def _standardiser(train: np.ndarray) -> Scorer:
  """x -> (x - mean) / std with the training statistics; std 1 where a feature is constant."""
  mean, std = train.mean(axis=0), train.std(axis=0)
  std = np.where(std > 10 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0), std, 1.0)
  return lambda x: (np.asarray(x, np.float64) - mean) / std


def zscore(train: np.ndarray) -> Scorer:
  """Absolute z-score of each feature against the training mean and standard deviation."""
  standardise = _standardiser(np.asarray(train, np.float64))
  return lambda x: np.abs(standardise(x))


def pca(train: np.ndarray, *, variance: float = 0.95, seed: int = 0) -> Scorer:
  """Squared reconstruction error per feature of a PCA keeping `variance`, standardised features."""
  standardise = _standardiser(np.asarray(train, np.float64))
  model = decomposition.PCA(n_components=variance, svd_solver="full", random_state=seed)
  model.fit(standardise(train))

  def score(x):
    z = standardise(x)
    return np.square(z - model.inverse_transform(model.transform(z)))

  return score


BASELINES = {"zscore": zscore, "pca": pca}


def calibrated(name: str, entity: Entity,
               config: ml_collections.ConfigDict) -> alarms.Calibrated:
  """Baseline `name` fitted on what a model of `config` trains on, scored like a model."""
  train = np.asarray(entity.train, np.float64)
  fit_rows = np.ones(len(train), bool)
  if config.threshold.calibration != "train":
    fit_rows[alarms.calibration_rows(entity.parts, config)] = False
  options = {"variance": config.eval.pca_variance} if name == "pca" else {}
  score = BASELINES[name](train[fit_rows], **options)
  return alarms.calibrate(score(entity.test), score(train), config, parts=entity.parts,
                         test_parts=entity.test_parts)
