"""Models by name: `config.model.name = "lstm_ae"` finds `tsad_jax/models/lstm_ae.py`.

A model file defines:
  defaults() -> ml_collections.ConfigDict: its `config.model` section, every
      field with its default (configs/common.py's get_config(name) takes it)
  build(model_config, *, num_features, window) -> flax.linen.Module
  loss(model, params, windows, *, rng, train) -> (scalar loss, dict of scalars)
  score(model, params, windows, *, rng) -> (B, S, D) anomaly score of the last
      S points of each window (S = W or 1), per feature, higher = more anomalous
  SCORES_EVERY_POINT: bool, True when S == W.
  TITLE: the model's name in tables ("MTAD-GAT").
  SCORING_FIELDS: the config.model fields that change only how scores are read,
      never the parameters (a trained run is re-scored with other values).
  HOOKS: a `Hooks` of its optional functions (`Hooks()` for none).
A module that reads fewer points than a window (a forecaster's lookback) names
that number in a `lookback` attribute.
The module's __call__ is `(windows, *, train=False)`; randomness enters through
the named rng streams "dropout" and "sample".
"""

from collections.abc import Callable
import dataclasses
import importlib
import pkgutil
import types


@dataclasses.dataclass(frozen=True)
class Hooks:
  """A model file's optional functions; None where the model has none."""

  # For a score made of parts rescaled over a whole series (MTAD-GAT's scale_scores):
  # (model, params, windows, *, rng) -> (B, S, P, D), used by the scorer instead of `score`,
  score_parts: Callable | None = None
  # and (parts, *, reference, model_config) -> (T, D): an entity's (T, P, D) per-timestep
  # parts to per-feature scores; `reference` holds the parts of its training series.
  combine: Callable | None = None
  # model_config -> k: score only every k-th window, the points between holding the last
  # score (MSCRED, whose windows are costly).
  score_stride: Callable | None = None
  # (model, params, windows, *, rng) -> (B, D, D): a heatmap for each detected segment.
  residual_matrices: Callable | None = None

  def per_feature(self, scores, *, reference, model_config):
    """Per-feature scores from the scorer's output: `combine`d parts, or the scores as they are."""
    if self.combine is None:
      return scores
    return self.combine(scores, reference=reference, model_config=model_config)


_NOT_MODELS = frozenset({"layers", "reconstruction"})  # helpers, not models


def available() -> list[str]:
  """Names of the model files in this package."""
  return sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name not in _NOT_MODELS)


def get(name: str) -> types.ModuleType:
  """Imports the model file `tsad_jax/models/<name>.py`."""
  if name not in available():
    raise ValueError(
        f"Unknown model {name!r} (config.model.name); available: {', '.join(available())}.")
  return importlib.import_module(f"tsad_jax.models.{name}")


def defaults(name: str):
  """The `config.model` section of the model `name`, every field at its default."""
  return get(name).defaults()
