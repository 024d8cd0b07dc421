"""PNG plots of a run: loss curves, test score with threshold, per-feature heatmap.

For models that reconstruct signature matrices (MSCRED), also the residual
matrix of the window ending at a detected segment's highest-scoring point.
"""

import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from tsad_jax.data.types import Segment  # noqa: E402
from tsad_jax.data.types import segments_from_labels  # noqa: E402


def _shade(ax, labels: np.ndarray) -> None:
  for segment in segments_from_labels(labels):
    ax.axvspan(segment.start, segment.end + 1, color="tab:red", alpha=0.2, lw=0)


def loss_curves(history: list[dict], path: pathlib.Path) -> None:
  fig, ax = plt.subplots(figsize=(6, 3.5))
  epochs = [h["epoch"] for h in history]
  values = []
  for key in ("train_loss", "val_loss"):
    if any(key in h for h in history):
      values += [h[key] for h in history if key in h]
      ax.plot(epochs, [h.get(key, np.nan) for h in history], marker="o", label=key)
  # A negative ELBO can be below zero; a log axis only suits positive losses.
  scale = "log" if values and min(values) > 0 else "linear"
  ax.set(xlabel="epoch", ylabel="loss", yscale=scale, title="Loss")
  ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def score_with_threshold(score: np.ndarray, labels: np.ndarray | None, threshold, *, name: str,
                         method: str, path, alarms: np.ndarray | None = None) -> None:
  """Total score over time, the threshold, the true anomaly segments shaded (where labels
  exist) and, given `alarms`, the alarm events marked below the curve. `path`: a file path
  or a binary file object."""
  fig, ax = plt.subplots(figsize=(12, 3.5))
  if labels is not None:
    _shade(ax, labels)
  ax.plot(score, lw=0.6, color="tab:blue", label="anomaly score")
  ax.plot(np.broadcast_to(threshold, score.shape), lw=0.9, color="k", ls="--",
          label=f"{method} threshold")
  if alarms is not None:
    for segment in segments_from_labels(np.asarray(alarms, np.uint8)):
      ax.axvspan(segment.start, segment.end + 1, ymax=0.06, color="tab:orange", lw=0)
  shaded = ("true anomalies shaded" if labels is not None else "no labels") + (
      ", alarm events in orange below" if alarms is not None else "")
  ax.set(xlabel="test timestep", ylabel="score", yscale="symlog",
         title=f"{name}: test score ({shaded})")
  ax.legend(loc="upper right")
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def feature_heatmap(per_feature: np.ndarray, labels: np.ndarray, feature_names, *, name: str,
                    path) -> None:
  """Per-feature scores over time (rank-scaled per feature), anomalies marked below."""
  ranks = per_feature.argsort(axis=0).argsort(axis=0) / max(len(per_feature) - 1, 1)
  fig, (ax, strip) = plt.subplots(2, 1, figsize=(12, 0.18 * len(feature_names) + 2),
                                  sharex=True, gridspec_kw={"height_ratios": [8, 1]})
  ax.imshow(ranks.T, aspect="auto", interpolation="nearest", cmap="magma")
  ax.set_yticks(range(len(feature_names)), feature_names, fontsize=6)
  ax.set_title(f"{name}: per-feature score (rank within feature)")
  strip.imshow(labels[None], aspect="auto", interpolation="nearest", cmap="Reds")
  strip.set_yticks([0], ["label"])
  strip.set_xlabel("test timestep")
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def top_detected_segments(score: np.ndarray, threshold: float, *,
                          limit: int = 20) -> list[tuple[Segment, int]]:
  """The runs of points scored above `threshold`, the highest-peaking first.

  Args:
    score: (T,) total score of one entity.
    threshold: a point is detected when its score is strictly above it.
    limit: at most this many segments.

  Returns:
    [(segment, its highest-scoring timestep)], by decreasing peak score.
  """
  segments = segments_from_labels((np.asarray(score) > threshold).astype(np.uint8))
  peaks = [segment.start + int(np.argmax(score[segment.start:segment.end + 1]))
           for segment in segments]
  order = sorted(range(len(segments)), key=lambda i: -score[peaks[i]])[:limit]
  return [(segments[i], peaks[i]) for i in order]


def residual_heatmap(residual: np.ndarray, feature_names, *, name: str, segment: Segment,
                     peak: int, path: pathlib.Path) -> None:
  """(D, D) residual matrix of the window ending at `peak`, features on both axes."""
  size = 0.16 * len(feature_names) + 2.5
  fig, ax = plt.subplots(figsize=(size + 1.2, size))
  image = ax.imshow(residual, interpolation="nearest", cmap="magma")
  ticks = range(len(feature_names))
  ax.set_xticks(ticks, feature_names, fontsize=6, rotation=90)
  ax.set_yticks(ticks, feature_names, fontsize=6)
  ax.set_title(f"{name}: residual at t={peak} (detected {segment.start}-{segment.end})",
               fontsize=9)
  fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="squared residual")
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def event_heatmap(per_feature: np.ndarray, feature_names, *, first: int, event: tuple[int, int],
                  title: str, path) -> None:
  """Each feature's scaled score around one alarm event (rows `first`.. of the series), the
  event's rows `event` (inclusive) framed; the colour scale is shared by all features."""
  fig, ax = plt.subplots(figsize=(8, 0.16 * len(feature_names) + 1.6))
  rows = np.arange(first, first + len(per_feature))
  image = ax.imshow(per_feature.T, aspect="auto", interpolation="nearest", cmap="magma",
                    extent=(rows[0] - 0.5, rows[-1] + 0.5, len(feature_names) - 0.5, -0.5))
  ax.axvspan(event[0] - 0.5, event[1] + 0.5, fill=False, ec="cyan", lw=1.5)
  ax.set_yticks(range(len(feature_names)), feature_names, fontsize=6)
  ax.set(xlabel="row", title=title)
  fig.colorbar(image, ax=ax, fraction=0.03, pad=0.02, label="scaled score")
  fig.tight_layout()
  fig.savefig(path, dpi=90)
  plt.close(fig)
