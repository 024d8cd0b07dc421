"""A PyOD-style API over the same training and scoring code as the launchers.

  detector = Detector(configs.demo.get_config()).fit(train)   # (T, D) array
  scores = detector.decision_function(test)   # one score per timestep, higher = worse
  labels = detector.predict(test)              # 0/1, from threshold_ set at fit time

The first `window - 1` timesteps of a series get scores by the rule in
`tsad_jax/data/windows.py` (the first window's own per-point scores, or a
backfill), so every call returns exactly one score per input row.
"""

import functools
import pathlib
import tempfile

import jax
import ml_collections
import numpy as np

from tsad_jax import feature_scaling
from tsad_jax import models
from tsad_jax import scoring
from tsad_jax import thresholds
from tsad_jax import train
from tsad_jax.data import normalize
from tsad_jax.data.prepare import Prepared
from tsad_jax.data.prepare import fit_and_val_starts
from tsad_jax.data.types import DataError
from tsad_jax.data.types import Dataset
from tsad_jax.data.types import Entity

# SPOT needs the test stream itself, so a threshold fixed at fit time uses POT instead.
_FIT_TIME_METHOD = {"spot": "pot"}


def _check(x, *, window: int, num_features: int | None, what: str) -> np.ndarray:
  x = np.asarray(x, dtype=np.float32)
  if x.ndim != 2:
    raise DataError(f"{what} must be a 2-D (timesteps, features) array, got shape {x.shape}.")
  if num_features is not None and x.shape[1] != num_features:
    raise DataError(f"{what} has {x.shape[1]} features; the detector was fitted on "
                    f"{num_features}.")
  if not np.isfinite(x).all():
    rows = np.unique(np.nonzero(~np.isfinite(x))[0])
    raise DataError(f"{what} holds NaN or inf in {len(rows)} rows (first: {rows[:5].tolist()}); "
                    "fill or drop them first.")
  if len(x) < window:
    raise DataError(f"{what} has {len(x)} timesteps, fewer than the window ({window}).")
  return x


class Detector:
  """Fit on a normal (T, D) series; score and label new series.

  Attributes set by `fit`: `threshold_`, `decision_scores_` (training scores),
  `labels_` (training labels at `threshold_`), `params_`, `history_`.
  Scores are combined and scaled per feature as the launchers do
  (`config.eval.feature_scaling`, and a model's own `combine`).
  """

  def __init__(self, config: ml_collections.ConfigDict, *, workdir: str | None = None):
    """`workdir`: where each fit's checkpoints go (a new subfolder per fit; default: temp)."""
    self.config = config
    self.workdir = workdir

  def fit(self, x, y=None) -> "Detector":
    del y  # unsupervised, as in PyOD
    cfg = self.config
    x = _check(x, window=cfg.data.window, num_features=None, what="fit input")
    self.stats_ = normalize.fit(x, cfg.data.normalize, clip=cfg.data.minmax_clip)
    series = normalize.apply(self.stats_, x).astype(np.float32)
    train_starts, val_starts = fit_and_val_starts([len(series)], cfg.data)
    entity = Entity(name="array", train=x, test=x[:0], labels=np.zeros(0, np.uint8))
    prepared = Prepared(Dataset("array", (entity,), tuple(map(str, range(x.shape[1])))),
                        series, series[:0], (len(series),), (), train_starts, val_starts)
    model_lib = models.get(cfg.model.name)
    feature_scaling.check(cfg.eval.feature_scaling, cfg.eval.scaling_floor)
    self.model_ = model_lib.build(cfg.model, num_features=x.shape[1], window=cfg.data.window)
    self._scorer = scoring.for_config(model_lib, self.model_, cfg)
    if self.workdir:
      pathlib.Path(self.workdir).mkdir(parents=True, exist_ok=True)
    run_dir = pathlib.Path(tempfile.mkdtemp(prefix="detector_", dir=self.workdir))
    result = train.fit(cfg, prepared, run_dir, model_lib=model_lib, model=self.model_)
    self.params_, self.history_ = result.params, result.history
    self.num_features_ = x.shape[1]
    self._combine = lambda parts, reference: parts
    if hasattr(model_lib, "combine"):  # see models/__init__.py
      self._combine = functools.partial(model_lib.combine, model_config=cfg.model)
    self.train_parts_ = self._raw_scores(series)
    self.train_per_feature_ = self._combine(self.train_parts_, reference=self.train_parts_)
    self.decision_scores_ = self._total(self.train_per_feature_)
    method = cfg.threshold.methods.split(",")[0].strip()
    method = _FIT_TIME_METHOD.get(method, method)
    self.threshold_ = float(thresholds.compute(
        method, calib_scores=self.decision_scores_, test_scores=self.decision_scores_,
        options=cfg.threshold))
    self.labels_ = thresholds.predict(self.decision_scores_, self.threshold_)
    return self

  def _raw_scores(self, series: np.ndarray) -> np.ndarray:
    key = jax.random.fold_in(jax.random.PRNGKey(self.config.seed), 2)
    return self._scorer(self.params_, series, [len(series)], key)

  def _total(self, per_feature: np.ndarray) -> np.ndarray:
    scaled, _ = feature_scaling.apply(self.config.eval.feature_scaling, per_feature,
                                      self.train_per_feature_,
                                      floor=self.config.eval.scaling_floor)
    return scaled.sum(axis=1)

  def decision_function(self, x) -> np.ndarray:
    """(T,) anomaly scores, one per row of `x`, higher = more anomalous."""
    x = _check(x, window=self.config.data.window, num_features=self.num_features_,
               what="decision_function input")
    parts = self._raw_scores(normalize.apply(self.stats_, x).astype(np.float32))
    return self._total(self._combine(parts, reference=self.train_parts_))

  def predict(self, x) -> np.ndarray:
    """(T,) 0/1 labels at `threshold_`."""
    return thresholds.predict(self.decision_function(x), self.threshold_)
