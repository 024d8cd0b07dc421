"""A PyOD-style API over the same training and scoring code as the launchers.

  detector = Detector(configs.demo.get_config()).fit(train)   # (T, D) array
  scores = detector.decision_function(test)   # one score per timestep, higher = worse
  labels = detector.predict(test)              # 0/1 alarms at the configured threshold

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

from tsad_jax import alarms
from tsad_jax import metric_summary
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

  Attributes set by `fit`: `threshold_` (the alarm threshold fitted on the
  calibration scores; the streaming methods start from it and follow each
  series `predict` is given), `calibration_scores_` (the held-out tail's
  total scores), `decision_scores_` (the training series' scores), `labels_`
  (training labels at `threshold_`), `params_`, `history_`. Scores are
  combined, smoothed, scaled and thresholded as the launchers do
  (`alarms.calibrate`, `config.eval`, `config.threshold`).
  """

  def __init__(self, config: ml_collections.ConfigDict, *, workdir: str | None = None):
    """`workdir`: where each fit's checkpoints go (a new subfolder per fit; default: temp)."""
    self.config = config
    self.workdir = workdir

  def fit(self, x, y=None) -> "Detector":
    del y  # unsupervised, as in PyOD
    cfg = self.config
    alarms.check(cfg)
    x = _check(x, window=cfg.data.window, num_features=None, what="fit input")
    alarms.check_lengths({"the fit input": (len(x),)}, cfg)
    self.stats_ = normalize.fit(x, cfg.data.normalize, clip=cfg.data.minmax_clip)
    series = normalize.apply(self.stats_, x).astype(np.float32)
    train_starts, val_starts = fit_and_val_starts([(len(series),)], cfg.data)
    entity = Entity(name="array", train=x, test=x[:0], labels=np.zeros(0, np.uint8))
    prepared = Prepared(Dataset("array", (entity,), tuple(map(str, range(x.shape[1])))),
                        series, series[:0], (len(series),), (), train_starts, val_starts)
    model_lib = models.get(cfg.model.name)
    self.model_ = model_lib.build(cfg.model, num_features=x.shape[1], window=cfg.data.window)
    self._scorer = scoring.for_config(model_lib, self.model_, cfg)
    if self.workdir:
      pathlib.Path(self.workdir).mkdir(parents=True, exist_ok=True)
    run_dir = pathlib.Path(tempfile.mkdtemp(prefix="detector_", dir=self.workdir))
    result = train.fit(cfg, prepared, run_dir, model_lib=model_lib, model=self.model_)
    self.params_, self.history_ = result.params, result.history
    self.num_features_ = x.shape[1]
    self._combine = functools.partial(model_lib.HOOKS.per_feature, model_config=cfg.model)
    self.train_parts_ = self._raw_scores(series)
    self.train_per_feature_ = self._combine(self.train_parts_, reference=self.train_parts_)
    calibrated = alarms.calibrate(self.train_per_feature_, self.train_per_feature_, cfg)
    self.calibration_scores_ = calibrated.calibration.sum(axis=1)
    self.decision_scores_ = calibrated.test.sum(axis=1)
    self.threshold_ = float(np.ravel(self._thresholds(self.decision_scores_))[0])
    self.labels_ = thresholds.predict(self.decision_scores_, self.threshold_)
    return self

  def _raw_scores(self, series: np.ndarray) -> np.ndarray:
    key = jax.random.fold_in(jax.random.PRNGKey(self.config.seed), 2)
    return self._scorer(self.params_, series, [len(series)], key)

  def _thresholds(self, scores: np.ndarray) -> np.ndarray:
    """The alarm method's threshold for each of `scores` (one for all but streaming methods)."""
    method = metric_summary.methods(self.config.threshold)[0]
    return thresholds.compute(method, calib_scores=self.calibration_scores_, test_scores=scores,
                              options=self.config.threshold)

  def decision_function(self, x) -> np.ndarray:
    """(T,) anomaly scores, one per row of `x`, higher = more anomalous."""
    x = _check(x, window=self.config.data.window, num_features=self.num_features_,
               what="decision_function input")
    parts = self._raw_scores(normalize.apply(self.stats_, x).astype(np.float32))
    per_feature = self._combine(parts, reference=self.train_parts_)
    return alarms.calibrate(per_feature, self.train_per_feature_, self.config).test.sum(axis=1)

  def predict(self, x) -> np.ndarray:
    """(T,) 0/1 alarms: `x`'s scores against the alarm method's threshold."""
    scores = self.decision_function(x)
    return thresholds.predict(scores, self._thresholds(scores))
