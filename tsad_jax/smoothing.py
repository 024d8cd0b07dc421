"""Causal smoothing of score streams: each output reads only the present and past rows.

Methods (`config.eval.smoothing`):
  none:      the scores as they are.
  ewma:      y_t = alpha x_t + (1 - alpha) y_{t-1}, starting at y_0 = x_0
             (`eval.smoothing_alpha`, in (0, 1]; 1 is no smoothing).
  gaussian:  y_t = sum_k w_k x_{t-k} / sum_k w_k over k = 0 .. K-1 with
             w_k = exp(-k^2 / (2 sigma^2)) and K = ceil(3 sigma) + 1: the right
             half of a Gaussian kernel, so no future row enters
             (`eval.smoothing_sigma`, in rows). Near the start of a stream the
             sum runs over the rows there are and is renormalised.

A stream is smoothed chunk by chunk with `init` and `update` (the state holds
the last smoothed row, or the last K - 1 raw rows); smoothing a whole series at
once (`smooth`) is one `update` from `init`, so both give the same rows.
"""

import math
from typing import NamedTuple

import numpy as np
from scipy import signal

METHODS = ("none", "ewma", "gaussian")


class State(NamedTuple):
  """What the next chunk needs: (0, ...) rows before the first chunk.

  ewma: the last smoothed row (1, ...); gaussian: the last K - 1 raw rows.
  """

  history: np.ndarray


def check(method: str, *, alpha: float, sigma: float) -> None:
  """Refuses an unknown method or a parameter outside its range."""
  if method not in METHODS:
    raise ValueError(f"config.eval.smoothing: unknown {method!r}; choose from "
                     f"{', '.join(METHODS)}.")
  if method == "ewma" and (isinstance(alpha, bool) or not 0 < alpha <= 1):
    raise ValueError(f"config.eval.smoothing_alpha={alpha!r}: use a weight in (0, 1] for the "
                     "newest row, e.g. 0.1 (1: no smoothing).")
  if method == "gaussian" and (isinstance(sigma, bool) or not sigma > 0):
    raise ValueError(f"config.eval.smoothing_sigma={sigma!r}: use a width in rows > 0, e.g. 5.")


def kernel(sigma: float) -> np.ndarray:
  """(K,) one-sided Gaussian weights, w_0 for the present row first."""
  lags = np.arange(math.ceil(3 * sigma) + 1, dtype=np.float64)
  return np.exp(-0.5 * (lags / sigma) ** 2)


def init(shape: tuple[int, ...] = ()) -> State:
  """The state before a stream's first row; `shape` is one row's shape."""
  return State(np.zeros((0, *shape)))


def update(method: str, state: State, chunk: np.ndarray, *, alpha: float = 1.0,
           sigma: float = 1.0) -> tuple[np.ndarray, State]:
  """Smooths the next rows of a stream: (smoothed chunk as float64, state after it)."""
  chunk = np.asarray(chunk, dtype=np.float64)
  check(method, alpha=alpha, sigma=sigma)
  if method == "none" or len(chunk) == 0:
    return chunk, state
  if method == "ewma":
    previous = state.history[-1] if len(state.history) else chunk[0]
    initial = ((1.0 - alpha) * previous)[None]
    out, _ = signal.lfilter([alpha], [1.0, alpha - 1.0], chunk, axis=0, zi=initial)
    return out, State(out[-1:])
  weights = kernel(sigma)
  rows = np.concatenate([state.history, chunk])
  past = len(state.history)
  out = np.zeros_like(chunk)
  norm = np.zeros(len(chunk))
  for lag, weight in enumerate(weights):
    begin = max(lag - past, 0)  # the first output with a row `lag` rows back
    if begin >= len(chunk):
      break
    out[begin:] += weight * rows[past + begin - lag:len(rows) - lag]
    norm[begin:] += weight
  out /= norm.reshape((-1,) + (1,) * (chunk.ndim - 1))
  return out, State(rows[max(len(rows) - (len(weights) - 1), 0):])


def smooth(method: str, series: np.ndarray, *, alpha: float = 1.0,
           sigma: float = 1.0) -> np.ndarray:
  """A whole (T, ...) series smoothed from its first row."""
  series = np.asarray(series)
  out, _ = update(method, init(series.shape[1:]), series, alpha=alpha, sigma=sigma)
  return out
