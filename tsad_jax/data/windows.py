"""Sliding windows by index, and per-window scores back to per-timestep scores.

Series live on the device as one (T, D) array (several entities concatenated);
a window is named by its start index and cut inside `jit`, so no (N, W, D)
copy is ever built on the host. Windows never cross an entity boundary.

Timestep scores ("last" rule, the default): timestep t >= W-1 takes the score
of the last point of the window that ends at t, so a score never uses future
data. The first W-1 timesteps of an entity have no window ending at them:
they take the first window's own per-point scores when the model scores every
point of a window, otherwise the score of timestep W-1 (backfill). The
"mean" rule instead averages every scored point of every window covering t.
"""

from collections.abc import Sequence

import jax
import numpy as np

from tsad_jax.data.types import DataError


def window_starts(lengths: Sequence[int], *, window: int, stride: int = 1) -> np.ndarray:
  """Start indices of windows over consecutive segments of a concatenated series.

  Each segment contributes starts 0, stride, 2*stride, ... plus, when the
  stride skips it, the window ending exactly at the segment's last point, so
  every timestep is covered while stride <= window.

  Args:
    lengths: length of each segment, in concatenation order.
    window: window length W.
    stride: step between consecutive window starts.

  Returns:
    (N,) int32 start indices into the concatenated series.
  """
  if window < 1 or stride < 1:
    raise ValueError(f"window ({window}) and stride ({stride}) must be >= 1.")
  starts, offset = [], 0
  for length in lengths:
    if length < window:
      raise DataError(
          f"A series of {length} points is shorter than the window ({window}); "
          "use a smaller --config.data.window or a longer series.")
    last = length - window
    own = np.arange(0, last + 1, stride)
    if own[-1] != last:
      own = np.append(own, last)
    starts.append(own + offset)
    offset += length
  return np.concatenate(starts).astype(np.int32)


def take_windows(series: jax.Array, starts: jax.Array, window: int) -> jax.Array:
  """Cuts windows out of a (T, D) series by start index; jit-friendly.

  Args:
    series: (T, D) array.
    starts: (B,) int start indices.
    window: static window length W.

  Returns:
    (B, W, D) windows.
  """
  num_features = series.shape[1]
  cut = lambda s: jax.lax.dynamic_slice(series, (s, 0), (window, num_features))
  return jax.vmap(cut)(starts)


def split_train_val(length: int, *, window: int, val_fraction: float) -> tuple[int, int]:
  """Time-ordered split: the last `val_fraction` of a series is validation.

  Returns:
    (train_length, val_length) with train first in time. val_length is 0 when
    val_fraction of the length rounds to 0 rows; otherwise both parts hold at
    least one window.
  """
  if not 0.0 <= val_fraction < 1.0:
    raise ValueError(f"data.val_fraction must be in [0, 1), got {val_fraction}.")
  val_length = int(round(length * val_fraction))
  if val_length == 0:
    return length, 0
  val_length = max(val_length, window)
  if length - val_length < window:
    raise DataError(
        f"A training series of {length} points cannot hold a window of {window} in both the "
        f"training and the validation part (val_fraction={val_fraction}); lower "
        "--config.data.window or --config.data.val_fraction.")
  return length - val_length, val_length


def held_out_rows(parts: Sequence[int], *, window: int, val_fraction: float) -> np.ndarray:
  """Row indices of the validation tails of consecutive parts (`split_train_val` of each)."""
  rows, offset = [np.zeros(0, np.int64)], 0
  for length in parts:
    fit_length, val_length = split_train_val(length, window=window, val_fraction=val_fraction)
    rows.append(np.arange(offset + fit_length, offset + length))
    offset += length
  return np.concatenate(rows)


def timestep_scores_last(
    last_point: np.ndarray, first_window: np.ndarray | None, *, window: int
) -> np.ndarray:
  """Per-timestep scores of one segment under the "last" rule (module docstring).

  Args:
    last_point: (T - W + 1, ...) score of the last point of the window ending
      at each t >= W-1 (stride 1).
    first_window: (W, ...) the first window's per-point scores, or None when
      the model scores only the last point of a window.
    window: W.

  Returns:
    (T, ...) one score per timestep.
  """
  if first_window is None:
    prefix = np.repeat(last_point[:1], window - 1, axis=0)
  else:
    prefix = first_window[: window - 1]
  return np.concatenate([prefix, last_point], axis=0)
