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
Optionally, for a score made of parts that are rescaled over a whole series:
  score_parts(model, params, windows, *, rng) -> (B, S, P, D), which the
      scorer then uses instead of `score`, and
  combine(parts, *, reference, model_config) -> (T, D): an entity's (T, P, D)
      per-timestep parts to per-feature scores; `reference` holds the parts of
      the same entity's training series.
A module that reads fewer points than a window (a forecaster's lookback) names
that number in a `lookback` attribute. Also optional:
  score_stride(model_config) -> k: score only every k-th window; the points
      in between hold the last score (MSCRED, whose windows are costly).
  residual_matrices(model, params, windows, *, rng) -> (B, D, D): drawn as a
      heatmap for each detected anomaly segment.
The module's __call__ is `(windows, *, train=False)`; randomness enters through
the named rng streams "dropout" and "sample".
"""

import importlib
import pkgutil
import types

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
