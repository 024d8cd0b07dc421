"""Scores a whole series with a trained model: one score per timestep and feature.

How window scores become timestep scores is documented in
`tsad_jax/data/windows.py` ("last" and "mean" rules).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from tsad_jax.data import windows as windows_lib


def _score_windows(params, series, starts, key, *, model, model_lib, window):
  return model_lib.score(model, params, windows_lib.take_windows(series, starts, window), rng=key)


def _accumulate(totals, counts, params, series, starts, key, *, model, model_lib, window):
  """Adds every scored point of the windows at `starts` into running sums."""
  scores = _score_windows(params, series, starts, key, model=model, model_lib=model_lib,
                          window=window)
  scored = scores.shape[1]
  positions = starts[:, None] + (window - scored) + jnp.arange(scored)
  totals = totals.at[positions.reshape(-1)].add(scores.reshape(-1, scores.shape[-1]))
  counts = counts.at[positions.reshape(-1)].add(1.0)
  return totals, counts


POINT_RULES = ("last", "mean")


class Scorer:
  """Compiles a model's score function once and applies it to whole series."""

  def __init__(self, model_lib, model, *, window: int, batch_size: int, rule: str = "last"):
    if rule not in POINT_RULES:
      raise ValueError(f"config.eval.point_rule={rule!r}; use last or mean.")
    self.window, self.batch_size, self.rule = window, batch_size, rule
    self.model_lib = model_lib
    kwargs = dict(model=model, model_lib=model_lib, window=window)
    self._windows = jax.jit(functools.partial(_score_windows, **kwargs))
    self._accumulate = jax.jit(functools.partial(_accumulate, **kwargs), donate_argnums=(0, 1))

  def _batches(self, starts: np.ndarray):
    for begin in range(0, len(starts), self.batch_size):
      batch = starts[begin:begin + self.batch_size]
      yield len(batch), jnp.asarray(np.resize(batch, self.batch_size))

  def __call__(self, params, series: np.ndarray, lengths, key) -> np.ndarray:
    """Per-timestep, per-feature scores of a concatenation of segments.

    Args:
      params: model parameters.
      series: (T, D) normalised series, segments concatenated.
      lengths: length of each segment; windows never cross segments.
      key: PRNG key for stochastic scores (the same key gives the same scores).

    Returns:
      (T, D) float32 scores.
    """
    device_series = jnp.asarray(series)
    if self.rule == "mean":
      return self._mean_rule(params, device_series, lengths, key)
    parts, offset = [], 0
    for length in lengths:
      starts = offset + windows_lib.window_starts([length], window=self.window)
      last, first = [], None
      for size, batch in self._batches(starts):
        scores = self._windows(params, device_series, batch, key)
        if first is None and self.model_lib.SCORES_EVERY_POINT:
          first = np.asarray(scores[0])  # the window starting at the segment's first point
        last.append(np.asarray(scores[:size, -1]))
      parts.append(windows_lib.timestep_scores_last(
          np.concatenate(last), first, window=self.window))
      offset += length
    return np.concatenate(parts).astype(np.float32)

  def _mean_rule(self, params, device_series, lengths, key) -> np.ndarray:
    starts = windows_lib.window_starts(lengths, window=self.window)
    totals = jnp.zeros(device_series.shape, jnp.float32)
    counts = jnp.zeros(device_series.shape[:1] + (1,), jnp.float32)
    for size, batch in self._batches(starts):
      if size < self.batch_size:  # padding repeats windows; score the tail on its own
        batch = batch[:size]
      totals, counts = self._accumulate(totals, counts, params, device_series, batch, key)
    if not self.model_lib.SCORES_EVERY_POINT:  # the first W-1 points: backfill
      counts_np, totals_np = np.asarray(counts), np.asarray(totals)
      parts, offset = [], 0
      for length in lengths:
        seg_totals = totals_np[offset:offset + length]
        seg_counts = counts_np[offset:offset + length]
        seg = seg_totals / np.maximum(seg_counts, 1)
        seg[: self.window - 1] = seg[self.window - 1]
        parts.append(seg)
        offset += length
      return np.concatenate(parts).astype(np.float32)
    return np.asarray(totals / counts, np.float32)
