"""Scores a series row by row, as it arrives: what `launch.detect` runs, in batch or streaming.

A `Deployment` holds everything a trained run needs to raise alarms on new
rows of one entity: the normaliser, the model and its best parameters, the
reference for score parts, the feature-scaling statistics and the threshold,
all fitted on the run's training series only (`deployment.py` builds it).
`start` and `update` then carry a small `StreamState` from chunk to chunk:
the last W - 1 rows, the last held score, the smoothing state and the
threshold's state, so memory stays bounded on an unbounded stream.

Chunking never changes a result: each window is scored on its own (with a
random key folded from its last row's index, for models that sample), so any
split of a series into chunks gives the same scores and alarms as the whole.

Rows follow the "last" rule of `tsad_jax/data/windows.py`: row t >= W - 1
takes the score of the last point of the window ending at t (with a scoring
stride k, of the latest scored window, every k-th); the first W - 1 rows wait
for the first window and take its own per-point scores, or its last point's.
"""

import dataclasses
import functools
from typing import Any
from typing import NamedTuple

import jax
import ml_collections
import numpy as np

from tsad_jax import alarms
from tsad_jax import config_names
from tsad_jax import distributed
from tsad_jax import feature_scaling
from tsad_jax import smoothing
from tsad_jax import thresholds
from tsad_jax.data import normalize
from tsad_jax.data import windows as windows_lib


@dataclasses.dataclass(frozen=True)
class Deployment:
  """A trained run made ready to score new rows of one entity.

  Attributes:
    config: the run's config.
    feature_names: the columns a new series must hold, in the model's order.
    model_lib, model, params: the model file, module and best parameters.
    normalizer: the entity's normalisation statistics (its training series).
    reference: the training series' raw score parts, for models that combine
      parts (`models.Hooks.combine`); None for the others.
    scaling: per-feature (median, spread) of the calibration scores, or None
      (`eval.feature_scaling = "none"`).
    threshold: the alarm method fitted on the calibration scores.
  """

  config: ml_collections.ConfigDict
  feature_names: tuple[str, ...]
  model_lib: Any
  model: Any
  params: Any
  normalizer: normalize.Stats
  reference: np.ndarray | None
  scaling: tuple[np.ndarray, np.ndarray] | None
  threshold: thresholds.Follower

  @property
  def window(self) -> int:
    return self.config.data.window

  @property
  def stride(self) -> int:
    stride_of = self.model_lib.HOOKS.score_stride
    return stride_of(self.config.model) if stride_of else 1


class ScoringState(NamedTuple):
  """What the model's scoring of a stream carries: `rows` seen, the last W - 1 of them
  (normalised), and the raw score of the latest scored window (None before the first)."""

  rows: int
  context: np.ndarray
  held: np.ndarray | None


class StreamState(NamedTuple):
  scoring: ScoringState
  smoothing: smoothing.State
  threshold: thresholds.Follower


class Scored(NamedTuple):
  """The rows a chunk completed: rows `first` .. `first + len(score) - 1` of the stream.

  per_feature: (n, D) each feature's scaled share of the score; score: (n,) their sum;
  threshold: (n,) the threshold in effect; alarm: (n,) uint8.
  """

  first: int
  per_feature: np.ndarray
  score: np.ndarray
  threshold: np.ndarray
  alarm: np.ndarray


@functools.partial(jax.jit, static_argnames=("model", "model_lib", "window"))
def _score_windows(params, rows, last, ends, seed, *, model, model_lib, window):
  """The windows of `rows` ending at its rows `last` (stream rows `ends`) -> (B, S, ...)
  scores, each window scored on its own with the run's scoring key folded with its end."""
  key = jax.random.fold_in(jax.random.PRNGKey(seed), 2)  # the key scoring.py's scores use
  score_fn = model_lib.HOOKS.score_parts or model_lib.score
  windows = windows_lib.take_windows(rows, last - window + 1, window)
  one = lambda w, end: score_fn(model, params, w[None], rng=jax.random.fold_in(key, end))[0]
  return jax.vmap(one)(windows, ends)


def start_scoring(num_features: int) -> ScoringState:
  return ScoringState(0, np.zeros((0, num_features), np.float32), None)


def score_rows(dep: Deployment, state: ScoringState, rows: np.ndarray, *,
               batch: int) -> tuple[ScoringState, np.ndarray]:
  """The next raw rows (n, D) -> (state, raw scores of the rows they complete).

  Rows complete once the first window is full; each then gets its score (per
  feature, or (P, D) parts) by the rule of the module docstring.
  """
  window, stride = dep.window, dep.stride
  norm = normalize.apply(dep.normalizer, np.asarray(rows, np.float32)).astype(np.float32)
  first_row = state.rows
  buffer = np.concatenate([state.context, norm])
  offset = first_row - len(state.context)  # the stream row of buffer[0]
  total = first_row + len(norm)
  ends = np.arange(max(first_row, window - 1), total)
  ends = ends[(ends - (window - 1)) % stride == 0]
  scores = _windows_scores(dep, buffer, ends - offset, ends, batch=batch)
  done_before = first_row if first_row >= window else 0
  done_after = total if total >= window else 0
  targets = np.arange(done_before, done_after)
  held = [] if state.held is None else [state.held[None]]
  last_points = np.concatenate(held + [scores[:, -1]]) if len(ends) or held else None
  out = []
  if len(targets) and targets[0] < window - 1:  # the first window's rows
    first_window = scores[0]
    early = targets[targets < window - 1]
    out.append(first_window[early] if first_window.shape[0] == window
               else np.repeat(first_window[-1:], len(early), axis=0))
  later = targets[targets >= window - 1]
  if len(later):
    latest = np.searchsorted(ends, later, side="right") - 1 + len(held)
    out.append(last_points[latest])
  new_held = last_points[-1] if last_points is not None and len(last_points) else state.held
  context = buffer[max(len(buffer) - (window - 1), 0):]
  raw = np.concatenate(out) if out else np.zeros((0,) + scores.shape[2:], np.float32)
  return ScoringState(total, context, new_held), raw


# Fewest windows a device gets: below that the split costs more than it saves (MSCRED's 7
# windows a call, each a large convolution XLA already spreads over the cores, ran at 0.91-0.99
# of its speed on two devices; bench.streaming).
MIN_WINDOWS_PER_DEVICE = 16


def _call_windows(dep: Deployment, batch: int) -> int:
  """Windows one call scores for `batch` rows: at most ceil(batch / stride) end in them."""
  return -(-batch // dep.stride)


def scoring_mesh(dep: Deployment, batch: int):
  """The devices a call scoring the windows of `batch` rows is split over."""
  return distributed.local_mesh(max(1, _call_windows(dep, batch) // MIN_WINDOWS_PER_DEVICE))


def _windows_scores(dep: Deployment, buffer: np.ndarray, buffer_ends: np.ndarray,
                    stream_ends: np.ndarray, *, batch: int) -> np.ndarray:
  """Scores of the windows ending at `buffer_ends` (every `dep.stride`-th row), in calls of
  one shape: the windows of `batch` rows (the last call padded) cut on the device from the
  rows they span, padded to a fixed length. A call is split over this process's devices (on
  CPU, one per core with `use_cpu_cores`): each scores its share of the windows."""
  window, stride = dep.window, dep.stride
  mesh = scoring_mesh(dep, batch)
  batch = -(-_call_windows(dep, batch) // mesh.size) * mesh.size
  span = window + (batch - 1) * stride  # rows under `batch` windows `stride` apart
  split, whole = distributed.batch_sharded(mesh), distributed.replicated(mesh)
  params = distributed.put(dep.params, whole)
  pieces = []
  rows = np.zeros((span, buffer.shape[1]), np.float32)
  for begin in range(0, len(buffer_ends), batch):
    ends = buffer_ends[begin:begin + batch]
    first = ends[0] - window + 1
    cut = buffer[first:first + span]
    rows[:len(cut)], rows[len(cut):] = cut, 0.0
    last = np.resize(ends - first, batch).astype(np.int32)
    stream_last = np.resize(stream_ends[begin:begin + batch], batch).astype(np.int32)
    scores = _score_windows(params, distributed.put(rows, whole), distributed.put(last, split),
                            distributed.put(stream_last, split), dep.config.seed,
                            model=dep.model, model_lib=dep.model_lib, window=window)
    pieces.append(np.asarray(scores)[:len(ends)])  # read before `rows` is refilled
  if not pieces:
    return np.zeros((0,) + _score_shape(dep), np.float32)
  return np.concatenate(pieces).astype(np.float32)


def _score_shape(dep: Deployment) -> tuple[int, ...]:
  rows = jax.ShapeDtypeStruct((dep.window, len(dep.feature_names)), np.float32)
  ends = jax.ShapeDtypeStruct((1,), np.int32)
  shape = jax.eval_shape(functools.partial(_score_windows, model=dep.model,
                                           model_lib=dep.model_lib, window=dep.window),
                         dep.params, rows, ends, ends, 0)
  return shape.shape[1:]


def start(dep: Deployment) -> StreamState:
  return StreamState(start_scoring(len(dep.feature_names)),
                     smoothing.init((len(dep.feature_names),)), dep.threshold)


def update(dep: Deployment, state: StreamState, rows: np.ndarray, *,
           batch: int = 64) -> tuple[StreamState, Scored]:
  """The next raw rows (n, D) of the stream -> (state, the rows they complete, scored)."""
  ev = dep.config.eval
  first = state.scoring.rows if state.scoring.rows >= dep.window else 0
  scoring_state, raw = score_rows(dep, state.scoring, rows, batch=batch)
  raw_per_feature = dep.model_lib.HOOKS.per_feature(raw, reference=dep.reference,
                                                    model_config=dep.config.model)
  smoothed, smoothing_state = smoothing.update(
      ev.smoothing, state.smoothing, raw_per_feature, alpha=ev.smoothing_alpha,
      sigma=ev.smoothing_sigma)
  per_feature = feature_scaling.transform(smoothed, dep.scaling,
                                          aggregation=ev.aggregation).astype(np.float32)
  score = per_feature.sum(axis=1)
  follower, levels = (thresholds.follow(state.threshold, score) if len(score)
                      else (state.threshold, np.zeros(0)))
  alarm = (score > levels).astype(np.uint8)
  return (StreamState(scoring_state, smoothing_state, follower),
          Scored(first, per_feature, score, levels, alarm))


def calibrate(config: ml_collections.ConfigDict, raw_train: np.ndarray,
              parts: tuple[int, ...], hooks) -> tuple[Any, Any, thresholds.Follower]:
  """(reference, scaling, threshold) from the raw scores of a training series of `parts`,
  as `alarms.calibrate` fits them: smoothed, cut to the calibration rows, scaled."""
  reference = raw_train if hooks.combine is not None else None
  per_feature = hooks.per_feature(raw_train, reference=raw_train, model_config=config.model)
  calibration = alarms.smooth(per_feature, config)[alarms.calibration_rows(parts, config)]
  ev = config.eval
  if ev.feature_scaling == "test":
    raise ValueError(
        "This run scales each feature's score by statistics of the whole test series "
        "(eval.feature_scaling=test), which a stream does not have; detect with the causal "
        "scaling: --override=eval.feature_scaling=train.")
  scaling = (feature_scaling.robust_stats(calibration, floor=ev.scaling_floor)
             if ev.feature_scaling == "train" else None)
  totals = feature_scaling.transform(calibration, scaling, aggregation=ev.aggregation).sum(axis=1)
  method = config_names.comma_list(config.threshold.methods)[0]  # the one raising alarms
  return reference, scaling, thresholds.start(method, calib_scores=totals,
                                              options=config.threshold)


def window_ending(dep: Deployment, before: ScoringState, rows: np.ndarray,
                  end: int) -> np.ndarray | None:
  """The normalised window ending at stream row `end`, from the rows `before` holds and the
  next raw `rows`; None when it is not within them (or the stream has no full window yet)."""
  norm = normalize.apply(dep.normalizer, np.asarray(rows, np.float32)).astype(np.float32)
  buffer = np.concatenate([before.context, norm])
  last = end - (before.rows - len(before.context))  # its index in buffer
  if end < dep.window - 1 or last < dep.window - 1 or last >= len(buffer):
    return None
  return buffer[last - dep.window + 1:last + 1]


@functools.partial(jax.jit, static_argnames=("model", "model_lib"))
def _residuals(params, windows, *, model, model_lib):
  return model_lib.HOOKS.residual_matrices(model, params, windows, rng=jax.random.PRNGKey(0))


def residual_matrix(dep: Deployment, window: np.ndarray) -> np.ndarray:
  """(D, D) residual heatmap of one window, for models with `Hooks.residual_matrices`."""
  return np.asarray(_residuals(dep.params, window[None], model=dep.model,
                               model_lib=dep.model_lib))[0]
