"""Scores a whole series with a trained model: one score per timestep and feature.

How window scores become timestep scores is documented in
`tsad_jax/data/windows.py` ("last" and "mean" rules). With a stride k > 1 only
every k-th window of a segment (and its last one) is scored; a timestep no
scored window reaches takes the score of the latest scored point before it
(causal hold), or of the first one for the points before that.

The compiled score function is shared by every Scorer of an equal model, and a
series is padded to the next power of two before it goes to the device (no
window reaches the padding), so scoring many series of one shape, such as a
fleet's members, compiles once.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from tsad_jax.data import windows as windows_lib

_STATIC = ("model", "model_lib", "window")


@functools.partial(jax.jit, static_argnames=_STATIC)
def _score_windows(params, series, starts, key, *, model, model_lib, window):
  score_fn = model_lib.HOOKS.score_parts or model_lib.score
  return score_fn(model, params, windows_lib.take_windows(series, starts, window), rng=key)


@functools.partial(jax.jit, static_argnames=_STATIC, donate_argnums=(0, 1))
def _accumulate(totals, counts, params, series, starts, key, *, model, model_lib, window):
  """Adds every scored point of the windows at `starts` into running sums."""
  scores = _score_windows(params, series, starts, key, model=model, model_lib=model_lib,
                          window=window)
  scored = scores.shape[1]
  positions = starts[:, None] + (window - scored) + jnp.arange(scored)
  totals = totals.at[positions.reshape(-1)].add(scores.reshape((-1,) + scores.shape[2:]))
  counts = counts.at[positions.reshape(-1)].add(1.0)
  return totals, counts


def hold_scores(ends: np.ndarray, scores: np.ndarray, *, length: int, window: int) -> np.ndarray:
  """Last-point scores of some windows of a segment -> one per timestep t >= W-1.

  Args:
    ends: (K,) increasing last points of the scored windows, ends[0] = W-1.
    scores: (K, ...) the score of each scored window's last point.
    length: the segment's length T.
    window: W.

  Returns:
    (T - W + 1, ...): timestep t takes the score of the latest end <= t.
  """
  latest = np.searchsorted(ends, np.arange(window - 1, length), side="right") - 1
  return scores[latest]


def pad_to_power_of_two(series: np.ndarray) -> np.ndarray:
  """(T, ...) -> (2^k, ...) with 2^k >= T, zero rows appended."""
  padded = 1 << max(len(series) - 1, 0).bit_length()
  return np.pad(series, [(0, padded - len(series))] + [(0, 0)] * (series.ndim - 1))


def padded_batches(starts: np.ndarray, batch_size: int):
  """Yields (size, batch): `starts` in batches of `batch_size`, the last one padded by
  repeating its starts (one compiled shape); only the first `size` are real."""
  for begin in range(0, len(starts), batch_size):
    batch = starts[begin:begin + batch_size]
    yield len(batch), jnp.asarray(np.resize(batch, batch_size))


def fill_unscored(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
  """Timesteps with count 0 take the value of the latest counted one, or the first after.

  Args:
    values: (T, ...) per-timestep values of one segment.
    counts: (T,) how many scored points each timestep got; at least one > 0.
  """
  steps = np.arange(len(counts))
  latest = np.maximum.accumulate(np.where(counts > 0, steps, -1))
  return values[np.where(latest < 0, np.argmax(counts > 0), latest)]


POINT_RULES = ("last", "mean")


class Scorer:
  """Compiles a model's score function once and applies it to whole series."""

  def __init__(self, model_lib, model, *, window: int, batch_size: int, rule: str = "last",
               stride: int = 1):
    if rule not in POINT_RULES:
      raise ValueError(f"config.eval.point_rule={rule!r}; use last or mean.")
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
      raise ValueError(f"The scoring stride must be a positive integer, got {stride!r}.")
    self.window, self.batch_size, self.rule, self.stride = window, batch_size, rule, stride
    self.model_lib = model_lib
    kwargs = dict(model=model, model_lib=model_lib, window=window)
    self._windows = functools.partial(_score_windows, **kwargs)
    self._accumulate = functools.partial(_accumulate, **kwargs)

  def __call__(self, params, series: np.ndarray, lengths, key) -> np.ndarray:
    """Per-timestep, per-feature scores of a concatenation of segments.

    Args:
      params: model parameters.
      series: (T, D) normalised series, segments concatenated.
      lengths: length of each segment; windows never cross segments.
      key: PRNG key for stochastic scores (the same key gives the same scores).

    Returns:
      (T, ...) float32 scores: (T, D), or (T,) + the trailing shape of the
      model's window scores when it has more axes.
    """
    device_series = jnp.asarray(pad_to_power_of_two(series))
    if self.rule == "mean":
      return self._mean_rule(params, device_series, lengths, key)
    parts, offset = [], 0
    for length in lengths:
      own = windows_lib.window_starts([length], window=self.window, stride=self.stride)
      last, first = [], None
      for size, batch in padded_batches(offset + own, self.batch_size):
        scores = self._windows(params, device_series, batch, key)
        if first is None and self.model_lib.SCORES_EVERY_POINT:
          first = np.asarray(scores[0])  # the window starting at the segment's first point
        last.append(np.asarray(scores[:size, -1]))
      held = hold_scores(own + self.window - 1, np.concatenate(last), length=length,
                         window=self.window)
      parts.append(windows_lib.timestep_scores_last(held, first, window=self.window))
      offset += length
    return np.concatenate(parts).astype(np.float32)

  def _mean_rule(self, params, device_series, lengths, key) -> np.ndarray:
    starts = windows_lib.window_starts(lengths, window=self.window, stride=self.stride)
    probe = jax.eval_shape(self._windows, params, device_series, jnp.asarray(starts[:1]), key)
    totals = jnp.zeros(device_series.shape[:1] + probe.shape[2:], jnp.float32)
    counts = jnp.zeros(device_series.shape[:1], jnp.float32)
    for size, batch in padded_batches(starts, self.batch_size):
      if size < self.batch_size:  # padding repeats windows; score the tail on its own
        batch = batch[:size]
      totals, counts = self._accumulate(totals, counts, params, device_series, batch, key)
    unpadded = sum(lengths)
    totals, counts = np.asarray(totals)[:unpadded], np.asarray(counts)[:unpadded]
    means = totals / np.maximum(counts, 1.0).reshape((-1,) + (1,) * (totals.ndim - 1))
    bounds = np.cumsum([0, *lengths])
    parts = [fill_unscored(means[begin:end], counts[begin:end])
             for begin, end in zip(bounds[:-1], bounds[1:], strict=True)]
    return np.concatenate(parts).astype(np.float32)


def for_config(model_lib, model, config) -> Scorer:
  """The Scorer a run's config asks for (the model may score every k-th window only)."""
  score_stride = model_lib.HOOKS.score_stride
  stride = score_stride(config.model) if score_stride else 1
  return Scorer(model_lib, model, window=config.data.window, batch_size=config.eval.batch_size,
                rule=config.eval.point_rule, stride=stride)
