"""Models by name: `config.model.name = "lstm_ae"` finds `tsad_jax/models/lstm_ae.py`.

A model file defines:
  build(model_config, *, num_features, window) -> flax.linen.Module
  loss(model, params, windows, *, rng, train) -> (scalar loss, dict of scalars)
  score(model, params, windows, *, rng) -> (B, S, D) anomaly score of the last
      S points of each window (S = W or 1), per feature, higher = more anomalous
  SCORES_EVERY_POINT: bool, True when S == W.
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
