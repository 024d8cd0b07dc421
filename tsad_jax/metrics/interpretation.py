"""Anomaly interpretation: do the highest per-feature scores name the features that explain it?

HitRate@P% and NDCG@P% of OmniAnomaly (Su et al., "Robust Anomaly Detection
for Multivariate Time Series through Stochastic Recurrent Neural Network",
KDD 2019, Sec. 4.5), as later reported by InterFusion and TranAD on SMD.

Every test timestep t inside a labelled segment with explaining features
(the ground-truth set G_t, non-empty) is scored on its own; timesteps outside
segments, or in segments without explaining features, are skipped. At t the
features are ranked by their score, highest first, and the top
k = floor(P / 100 * |G_t|) are kept (capped at the number of features):

  HitRate@P% = |top-k ∩ G_t| / |G_t|
  NDCG@P%    = sum over ranks r <= k with feature in G_t of 1 / log2(r + 1),
               divided by the same sum for min(k, |G_t|) relevant features at
               the top (r is 1-based).

Both are averaged over the timesteps. Choices the paper leaves open:

* k is rounded down ("top ⌊P% × |G_t|⌋"); some public code rounds to nearest
  instead, which differs at P = 150 for odd |G_t| (|G_t| = 1 gives k = 1 here,
  2 there).
* Equal scores are ordered by feature index, lower first (a stable sort), so
  results never depend on the platform; no tie averaging as in sklearn's
  `ndcg_score`.
* When k = 0 (only possible for P < 100) nothing is retrieved and both
  figures are 0 at t.
"""

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

INTERPRETATION_PERCENTS = (100, 150)


def _keys(percent: float) -> tuple[str, str]:
  label = f"{percent:g}"
  return f"HitRate@{label}%", f"NDCG@{label}%"


def explanation_mask(segments: Sequence, shape: tuple[int, int]) -> np.ndarray:
  """The (T, D) boolean ground truth: mask[t, d] when feature d explains timestep t.

  Args:
    segments: objects with `start`, `end` (0-based, inclusive) and `dims`
      (0-based feature indices, possibly empty), e.g. `tsad_jax.data.Segment`.
      Overlapping segments contribute the union of their dims.
    shape: (T, D) of the per-feature scores.

  Returns:
    (T, D) bool array; rows without explaining features are all False.

  Raises:
    ValueError: a segment outside the T timesteps or a dim outside the D features.
  """
  length, width = shape
  mask = np.zeros(shape, dtype=bool)
  for segment in segments:
    dims = np.asarray(segment.dims, dtype=np.int64)
    if dims.size == 0:
      continue
    if not 0 <= segment.start <= segment.end < length:
      raise ValueError(f"segment {segment.start}-{segment.end} lies outside the {length} "
                       "timesteps of the per-feature scores (0-based, inclusive).")
    if dims.min() < 0 or dims.max() >= width:
      raise ValueError(f"segment {segment.start}-{segment.end} names dims "
                       f"{tuple(int(d) for d in dims)}, but the scores have {width} features "
                       "(dims are 0-based).")
    mask[segment.start:segment.end + 1, dims] = True
  return mask


def _check_scores(per_feature_scores: ArrayLike) -> np.ndarray:
  scores = np.asarray(per_feature_scores)
  if scores.ndim != 2:
    raise ValueError("per_feature_scores must be a (T, D) array (one row per timestep, one "
                     f"column per feature), got shape {scores.shape}.")
  if not np.issubdtype(scores.dtype, np.number) or np.issubdtype(scores.dtype, np.complexfloating):
    raise ValueError(f"per_feature_scores must be real numbers, got dtype {scores.dtype}.")
  bad = ~np.isfinite(scores)
  if bad.any():
    t, d = np.argwhere(bad)[0]
    raise ValueError(f"per_feature_scores must be finite, but per_feature_scores[{t}, {d}] = "
                     f"{scores[t, d].item()} ({int(bad.any(axis=1).sum())} timesteps with NaN "
                     "or infinite scores).")
  return scores


def _check_percents(percents: Sequence[float]) -> tuple[float, ...]:
  out = tuple(percents)
  if not out:
    raise ValueError("percents is empty; pass e.g. (100, 150).")
  for p in out:
    if isinstance(p, bool) or not isinstance(p, (int, float, np.number)) or not (
        np.isfinite(p) and p > 0):
      raise ValueError(f"percents must be positive finite numbers, got {p!r}.")
  if len({_keys(p)[0] for p in out}) != len(out):
    raise ValueError(f"percents has repeated values: {out}.")
  return out


def interpretation_per_timestep(
    per_feature_scores: ArrayLike, segments: Sequence, *,
    percents: Sequence[float] = INTERPRETATION_PERCENTS) -> dict[str, np.ndarray]:
  """HitRate and NDCG at each timestep that has explaining features.

  Args:
    per_feature_scores: (T, D) finite scores, higher = more anomalous.
    segments: labelled segments with `start`, `end` (0-based, inclusive) and
      `dims` (0-based, possibly empty), e.g. `tsad_jax.data.Entity.segments`.
    percents: the P of HitRate@P% and NDCG@P%.

  Returns:
    {"timestep": (n,) int indices of the evaluated timesteps, "HitRate@100%":
    (n,) float64, "NDCG@100%": (n,), ... for each percent}; n may be 0.

  Raises:
    ValueError: scores not a finite (T, D) array, a segment or dim out of
      range, or a percent that is not a positive number.
  """
  scores = _check_scores(per_feature_scores)
  percents = _check_percents(percents)
  truth = explanation_mask(segments, scores.shape)
  rows = np.flatnonzero(truth.any(axis=1))
  truth = truth[rows]
  width = scores.shape[1]
  picked = np.arange(rows.size)
  # Highest first, ties by lower feature index: a stable ascending sort of the
  # columns in reverse, read backwards (no negation, exact for every dtype).
  order = width - 1 - np.argsort(scores[rows, ::-1], axis=1, kind="stable")[:, ::-1]
  relevant = np.take_along_axis(truth, order, axis=1)  # (n, D) in rank order
  size = truth.sum(axis=1)  # |G_t| >= 1
  discount = 1.0 / np.log2(np.arange(2, width + 2))  # rank r (1-based) -> 1 / log2(r + 1)
  hits_at = np.concatenate([np.zeros((rows.size, 1)), np.cumsum(relevant, axis=1)], axis=1)
  gain_at = np.concatenate([np.zeros((rows.size, 1)),
                            np.cumsum(relevant * discount, axis=1)], axis=1)
  ideal_at = np.concatenate([[0.0], np.cumsum(discount)])
  out = {"timestep": rows}
  for percent in percents:
    k = np.minimum(np.floor(percent * size / 100.0).astype(np.int64), width)
    hit_key, ndcg_key = _keys(percent)
    out[hit_key] = hits_at[picked, k] / size
    ideal = ideal_at[np.minimum(k, size)]
    out[ndcg_key] = np.divide(gain_at[picked, k], ideal, out=np.zeros(rows.size),
                              where=ideal > 0)
  return out


def interpretation(per_feature_scores: ArrayLike, segments: Sequence, *,
                   percents: Sequence[float] = INTERPRETATION_PERCENTS) -> dict[str, float] | None:
  """HitRate@P% and NDCG@P% averaged over the timesteps that have explaining features.

  Args:
    per_feature_scores: (T, D) finite scores, higher = more anomalous.
    segments: labelled segments with `start`, `end` (0-based, inclusive) and
      `dims` (0-based, possibly empty), e.g. `tsad_jax.data.Entity.segments`.
    percents: the P of HitRate@P% and NDCG@P%.

  Returns:
    {"HitRate@100%": ..., "HitRate@150%": ..., "NDCG@100%": ..., "NDCG@150%":
    ..., "timesteps": n} (one HitRate and NDCG key per percent, in that
    order), or None when no segment has explaining features.

  Raises:
    ValueError: scores not a finite (T, D) array, a segment or dim out of
      range, or a percent that is not a positive number.
  """
  values = interpretation_per_timestep(per_feature_scores, segments, percents=percents)
  rows = values.pop("timestep")
  if rows.size == 0:
    return None
  hit_keys = [k for k in values if k.startswith("HitRate@")]
  ndcg_keys = [k for k in values if k.startswith("NDCG@")]
  out = {k: float(np.mean(values[k])) for k in hit_keys + ndcg_keys}
  out["timesteps"] = int(rows.size)
  return out
