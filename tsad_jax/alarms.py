"""From a model's per-feature scores to the total score that alarms are raised on.

For one entity, as the launchers, `Detector` and the benchmarks all do it:
  1. each feature's raw score is smoothed causally (`smoothing.py`), the
     training series and the test series each from its own first row;
  2. the calibration part is cut from the smoothed training scores: the
     held-out chronological tail the model never trained on
     (`threshold.calibration = "val"`, the validation part, scored in eval
     mode; for a series of several parts such as a whole spacecraft, every
     part's tail), or the whole training series ("train": in-sample, kept for
     comparison);
  3. every feature is scaled, and with `eval.aggregation = "tail_p"` turned
     into a -log tail probability (`feature_scaling.py`), with statistics of
     the calibration part (causal) or of the test series (transductive);
  4. the total is the sum over features; thresholds are fitted on the
     calibration part's totals (`thresholds`).
By default nothing here reads the test series beyond the row being scored, so
the total and the alarm at t are the same whether or not the series goes on
after t.
"""

from typing import NamedTuple

import ml_collections
import numpy as np

from tsad_jax import config_names
from tsad_jax import feature_scaling
from tsad_jax import smoothing
from tsad_jax import thresholds
from tsad_jax.data import windows

CALIBRATIONS = ("val", "train")


class Calibrated(NamedTuple):
  """One entity's per-feature scores after smoothing, scaling and aggregation.

  Attributes:
    test: (T, D) for the test series; `test.sum(axis=1)` is its total score.
    calibration: (n, D) for the calibration part of the training series.
  """

  test: np.ndarray
  calibration: np.ndarray


def check(config: ml_collections.ConfigDict) -> None:
  """Refuses bad values of the fields this module reads, before anything is trained."""
  if config.threshold.calibration not in CALIBRATIONS:
    raise ValueError(f"config.threshold.calibration: unknown {config.threshold.calibration!r}; "
                     f"choose from {', '.join(CALIBRATIONS)}.")
  if config.threshold.calibration == "val" and not config.data.val_fraction:
    raise ValueError("config.threshold.calibration='val' calibrates on the held-out tail of the "
                     "training series: set config.data.val_fraction > 0 (e.g. 0.1), or "
                     "calibrate in-sample with config.threshold.calibration=train.")
  ev = config.eval
  feature_scaling.check(ev.feature_scaling, ev.scaling_floor, ev.aggregation)
  methods = config_names.comma_list(config.threshold.methods)
  if "tail_p" in methods and ev.aggregation != "tail_p":
    raise ValueError("config.threshold.methods has tail_p, a threshold on summed -log tail "
                     "probabilities: set config.eval.aggregation=tail_p, or drop tail_p.")
  smoothing.check(ev.smoothing, alpha=ev.smoothing_alpha, sigma=ev.smoothing_sigma)


def check_lengths(entities: dict[str, tuple[int, ...]], config: ml_collections.ConfigDict) -> None:
  """Refuses, before training, an entity whose calibration part is too short to fit the
  configured thresholds on; `entities` maps each name to its training parts' lengths."""
  for name, parts in entities.items():
    points = len(calibration_rows(parts, config))
    for method in config_names.comma_list(config.threshold.methods):
      needed = thresholds.min_calibration(method, config.threshold)
      if points < needed:
        where = ("its held-out validation tail" if config.threshold.calibration == "val"
                 else "its training series")
        raise ValueError(
            f"{name}: the threshold {method} needs at least {needed} calibration scores, but "
            f"{where} has {points}. Raise config.data.val_fraction, lower "
            "config.threshold.pot_level, or choose another threshold.methods (percentile "
            "needs one score).")


def calibration_rows(parts: tuple[int, ...], config: ml_collections.ConfigDict) -> np.ndarray:
  """Rows of a training series (of parts of these lengths) that are calibration scores: the
  held-out tail of every part, or all of them with `threshold.calibration = "train"`."""
  if config.threshold.calibration == "train":
    return np.arange(sum(parts))
  return windows.held_out_rows(parts, window=config.data.window,
                               val_fraction=config.data.val_fraction)


def smooth(per_feature: np.ndarray, config: ml_collections.ConfigDict) -> np.ndarray:
  """A whole series' per-feature scores smoothed as `config.eval` says."""
  ev = config.eval
  return smoothing.smooth(ev.smoothing, per_feature, alpha=ev.smoothing_alpha,
                          sigma=ev.smoothing_sigma)


def calibrate(test: np.ndarray, train: np.ndarray, config: ml_collections.ConfigDict, *,
              parts: tuple[int, ...] = (), test_parts: tuple[int, ...] = ()) -> Calibrated:
  """One entity's (T, D) test and training per-feature scores -> `Calibrated`.

  `parts`, `test_parts`: the lengths of the training and test series' parts
  (`Entity.parts`, `Entity.test_parts`; default one each). Separately recorded
  parts (a whole spacecraft's channels) are separate sensors: each test part is
  scaled by its own training part's calibration scores (or, test-scaled, by its
  own scores), and the calibration part is every part's, each scaled alike.
  """
  parts = parts or (len(train),)
  smoothed_train, smoothed_test = smooth(train, config), smooth(test, config)
  if len(test_parts) > 1 and len(test_parts) == len(parts):
    starts = np.cumsum((0,) + tuple(parts))[:-1]
    pairs = [(piece, smoothed_train[start + calibration_rows((length,), config)])
             for piece, start, length in zip(np.split(smoothed_test, np.cumsum(test_parts)[:-1]),
                                             starts, parts, strict=True)]
  else:
    pairs = [(smoothed_test, smoothed_train[calibration_rows(parts, config)])]
  ev = config.eval
  scaled = [feature_scaling.apply(ev.feature_scaling, piece, calibration,
                                  floor=ev.scaling_floor, aggregation=ev.aggregation)
            for piece, calibration in pairs]
  return Calibrated(np.concatenate([t for t, _ in scaled]).astype(np.float32),
                    np.concatenate([c for _, c in scaled]).astype(np.float32))


def mode(config: ml_collections.ConfigDict) -> str:
  """What produced a summary's scores, in a few words for its tables."""
  if config.eval.feature_scaling == "test":
    return "test-scaled (transductive: each feature scaled by the whole test series)"
  where = ("the held-out validation tail" if config.threshold.calibration == "val"
           else "the whole training series, in-sample")
  return f"causal (calibrated on {where})"
