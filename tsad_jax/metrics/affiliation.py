"""Affiliation precision, recall and F (Huet et al., KDD 2022), as TSB-AD computes them.

Timestep i is the interval [i, i + 1) and the series is [0, T). Each
ground-truth event J owns the affiliation zone E between the midpoints to its
neighbouring events. Inside a zone, with X uniform on E:
  precision = mean over predicted x in E of P(d(X, J) >= d(x, J)),
  recall    = mean over y in J of P(d(y, X) >= d(y, predictions in E)).
Precision averages the zones that hold a prediction, recall all zones; both are
closed-form integrals of piecewise-linear distances, computed here for all
events at once. Nothing predicted makes precision undefined (TSB-AD: NaN); F is
then reported as 0, the limit for recall 0.

Reference: A. Huet, J. M. Navarro, D. Rossi, "Local Evaluation of Time Series
Anomaly Detection Algorithms", KDD 2022.
"""

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from tsad_jax.metrics import inputs
from tsad_jax.metrics import segments


class Zones(NamedTuple):
  """Ground-truth events [j_lo, j_hi) and their affiliation zones [e_lo, e_hi)."""
  j_lo: np.ndarray
  j_hi: np.ndarray
  e_lo: np.ndarray
  e_hi: np.ndarray


def zones(y: np.ndarray) -> Zones:
  starts, ends = segments.bounds(y)
  j_lo, j_hi = starts.astype(np.float64), ends + 1.0
  middle = (j_hi[:-1] + j_lo[1:]) / 2
  return Zones(j_lo, j_hi, np.r_[0.0, middle], np.r_[middle, float(y.shape[0])])


def _pieces(z: Zones, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Predicted events cut at zone borders: (zone index, start, stop), in time order."""
  starts, ends = segments.bounds(p)
  lo, hi = starts.astype(np.float64), ends + 1.0
  inner = z.e_lo[1:]
  first = np.searchsorted(inner, lo, side="right")
  last = np.searchsorted(inner, hi, side="left")
  count = last - first + 1
  event = np.repeat(np.arange(lo.size), count)
  offset = np.arange(event.size) - np.repeat(np.cumsum(count) - count, count)
  zone = first[event] + offset
  return zone, np.maximum(lo[event], z.e_lo[zone]), np.minimum(hi[event], z.e_hi[zone])


def _precision_primitive(x: np.ndarray, z: Zones, k: np.ndarray) -> np.ndarray:
  """Integral from J's start to x of P(d(X, J) >= d(x', J)) dx', X uniform on zone k."""
  j_lo, j_hi, size = z.j_lo[k], z.j_hi[k], z.e_hi[k] - z.e_lo[k]
  room = np.minimum(j_lo - z.e_lo[k], z.e_hi[k] - j_hi)
  length = j_hi - j_lo

  def outside(distance):
    capped = np.minimum(distance, room)
    min_part = capped ** 2 / 2 + room * (distance - capped)
    return distance - (length * distance + distance ** 2 / 2 + min_part) / size

  return (outside(np.maximum(x - j_hi, 0)) - outside(np.maximum(j_lo - x, 0))
          + np.clip(x, j_lo, j_hi) - j_lo)


def _after(q, e_hi, u, v):
  """Integral over [u, v] (right of a prediction ending at q) of d + min(d, m_y)."""
  bend = (q + e_hi) / 2

  def primitive(y):
    return np.where(y <= bend, (y - q) ** 2, (bend - q) ** 2 + (e_hi - q) * (y - bend))

  return primitive(v) - primitive(u)


def _before(p, e_lo, u, v):
  """Integral over [u, v] (left of a prediction starting at p) of d + min(d, m_y)."""
  bend = (p + e_lo) / 2

  def primitive(y):
    return np.where(y >= bend, (p - y) ** 2, (p - bend) ** 2 + (p - e_lo) * (bend - y))

  return primitive(u) - primitive(v)


def _recall_loss(z: Zones, zone, lo, hi) -> np.ndarray:
  """Per zone, integral over J of d(y, predictions) + min(d, m_y) (y outside predictions)."""
  n_zones = z.j_lo.size
  first = np.r_[True, zone[1:] != zone[:-1]]
  last = np.r_[zone[1:] != zone[:-1], True]
  inner = ~last
  middle = (hi[:-1][inner[:-1]] + lo[1:][inner[:-1]]) / 2
  gaps = [  # (zone, pivot, from, to, side)
      (zone[first], lo[first], z.e_lo[zone[first]], lo[first], _before),
      (zone[:-1][inner[:-1]], hi[:-1][inner[:-1]], hi[:-1][inner[:-1]], middle, _after),
      (zone[:-1][inner[:-1]], lo[1:][inner[:-1]], middle, lo[1:][inner[:-1]], _before),
      (zone[last], hi[last], hi[last], z.e_hi[zone[last]], _after),
  ]
  loss = np.zeros(n_zones)
  for k, pivot, start, stop, side in gaps:
    u = np.maximum(start, z.j_lo[k])
    v = np.maximum(np.minimum(stop, z.j_hi[k]), u)
    bound = z.e_lo[k] if side is _before else z.e_hi[k]
    loss += np.bincount(k, weights=side(pivot, bound, u, v), minlength=n_zones)
  return loss


def precision_recall_of(z: Zones, p: np.ndarray) -> tuple[float, float]:
  """Affiliation (precision, recall) against precomputed zones (validated predictions)."""
  n_zones = z.j_lo.size
  zone, lo, hi = _pieces(z, p)
  if zone.size == 0:
    return float("nan"), 0.0
  gained = _precision_primitive(hi, z, zone) - _precision_primitive(lo, z, zone)
  covered = np.bincount(zone, weights=hi - lo, minlength=n_zones)
  hit = covered > 0
  precision = np.bincount(zone, weights=gained, minlength=n_zones)[hit] / covered[hit]
  size, length = z.e_hi - z.e_lo, z.j_hi - z.j_lo
  recall = np.where(hit, 1 - _recall_loss(z, zone, lo, hi) / (length * size), 0.0)
  return float(np.mean(precision)), float(np.mean(recall))


def f_of(precision: float, recall: float) -> float:
  if np.isnan(precision) or precision + recall == 0:
    return 0.0
  return 2 * precision * recall / (precision + recall)


def affiliation_precision_recall(labels: ArrayLike, preds: ArrayLike) -> tuple[float, float]:
  """Affiliation precision and recall of binary predictions.

  Args:
    labels: (T,) 0/1 labels.
    preds: (T,) 0/1 predictions.

  Returns:
    (precision, recall): precision NaN when nothing is predicted; both NaN
    without anomalies.

  Raises:
    ValueError: bad shapes, lengths or non-binary values.
  """
  y, p = inputs.labels_and_preds(labels, preds)
  if not y.any():
    return float("nan"), float("nan")
  return precision_recall_of(zones(y), p)


def affiliation_f(labels: ArrayLike, preds: ArrayLike) -> float:
  """Affiliation F1 (TSB-AD's Affiliation-F at given predictions); NaN without anomalies.

  Args:
    labels: (T,) 0/1 labels.
    preds: (T,) 0/1 predictions.

  Returns:
    2PR / (P + R); 0 when nothing is predicted.

  Raises:
    ValueError: bad shapes, lengths or non-binary values.
  """
  precision, recall = affiliation_precision_recall(labels, preds)
  return float("nan") if np.isnan(recall) else f_of(precision, recall)


def best_affiliation_f(y: np.ndarray, s: np.ndarray, thresholds: np.ndarray) -> float:
  """Best affiliation F of `s > threshold` over the given thresholds (validated inputs)."""
  if not y.any():
    return float("nan")
  z = zones(y)
  return max(f_of(*precision_recall_of(z, (s > t).astype(np.int8))) for t in thresholds)
