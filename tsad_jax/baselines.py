"""Cheap baselines every results table carries: a deep model must beat them.

Each takes the normalised train and test series and returns (T_test, D)
per-feature scores and the (T_test,) total score, higher = more anomalous.
"""

import numpy as np
from sklearn import decomposition


def _standardise(train: np.ndarray, x: np.ndarray) -> np.ndarray:
  std = train.std(axis=0)
  return (x - train.mean(axis=0)) / np.where(std > 0, std, 1.0)


def zscore(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Absolute z-score of each feature against train statistics; total = the largest."""
  per_feature = np.abs(_standardise(train, test))
  return per_feature, per_feature.max(axis=1)


def pca(train: np.ndarray, test: np.ndarray, *, variance: float = 0.95,
        seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """Squared reconstruction error of a PCA keeping `variance`, on standardised features."""
  model = decomposition.PCA(n_components=variance, svd_solver="full", random_state=seed)
  model.fit(_standardise(train, train))
  test = _standardise(train, test)
  per_feature = np.square(test - model.inverse_transform(model.transform(test)))
  return per_feature, per_feature.sum(axis=1)


BASELINES = {"zscore": zscore, "pca": pca}
