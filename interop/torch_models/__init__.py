"""PyTorch twins of the Flax models: `interop/torch_models/<name>.py` for each
`tsad_jax/models/<name>.py`, built from the same config and computing the same
function.

A twin file defines:
  build(model_config, *, num_features, window) -> torch.nn.Module, whose
      state_dict keys and shapes are those of the public PyTorch implementation
      where one exists (named in the file's docstring).
  entries(model_config, *, num_features, window) -> list[interop.layouts.Entry]:
      how every state_dict tensor maps to the Flax parameters.
  loss(module, windows, noise) -> scalar tensor: the Flax file's training loss.
  score(module, windows, noise) -> (B, S, D), or score_parts(...) -> (B, S, P, D)
      where the Flax file has score_parts.
`noise` holds the random draws the Flax model made on the same windows (see
interop/noise.py), so both sides compute with the same samples; dropout is
compared at rate 0.
"""

import importlib
import types

from tsad_jax import models


def get(name: str) -> types.ModuleType:
  """Imports `interop/torch_models/<name>.py` for the model `config.model.name`."""
  models.get(name)  # the same unknown-name error as the Flax side
  try:
    return importlib.import_module(f"interop.torch_models.{name}")
  except ModuleNotFoundError as error:
    if error.name != f"interop.torch_models.{name}":
      raise
    raise ValueError(f"Model {name!r} has no PyTorch twin in interop/torch_models/.") from None
