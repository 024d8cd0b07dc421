"""What a run is built from: its config checked, its data prepared, its model built, and its
starting parameters."""

from collections.abc import Callable
import dataclasses
from typing import Any

import ml_collections

from tsad_jax import alarms
from tsad_jax import baselines
from tsad_jax import config_names
from tsad_jax import models
from tsad_jax import scoring
from tsad_jax import thresholds
from tsad_jax import train
from tsad_jax.data import load
from tsad_jax.data.prepare import Prepared
from tsad_jax.data.prepare import prepare


@dataclasses.dataclass(frozen=True)
class Setup:
  """Everything built from a config before training or scoring."""

  config: ml_collections.ConfigDict
  prepared: Prepared
  model_lib: object
  model: object


# (config, number of features) -> the starting parameters converted from config.init's checkpoint
ParamsFrom = Callable[[ml_collections.ConfigDict, int], Any]


def check_config(config: ml_collections.ConfigDict) -> None:
  """Refuses unknown method names before any data is loaded or any step is trained."""
  choices = {
      "threshold.methods": (config_names.comma_list(config.threshold.methods), thresholds.REGISTRY),
      "eval.baselines": (config_names.comma_list(config.eval.baselines), baselines.BASELINES),
      "eval.point_rule": ([config.eval.point_rule], scoring.POINT_RULES),
      "train.compute_dtype": ([config.train.compute_dtype], tuple(train.COMPUTE_DTYPES)),
  }
  for field, (given, valid) in choices.items():
    unknown = [name for name in given if name not in valid]
    if unknown:
      raise ValueError(f"config.{field}: unknown {', '.join(map(repr, unknown))}; "
                       f"choose from {', '.join(valid)}.")
  if config.data.get("entities"):
    raise ValueError(f"config.data.entities={config.data.entities!r} asks for one model per "
                     "entity: run it with `python -m launch.train_fleet`. launch.train trains one "
                     "model on config.data.entity.")
  if config.data.window < 2:
    raise ValueError(f"config.data.window must be >= 2, got {config.data.window}.")
  alarms.check(config)
  plots_limit = config.eval.residual_plots
  if isinstance(plots_limit, bool) or not isinstance(plots_limit, int) or plots_limit < 0:
    raise ValueError(f"config.eval.residual_plots={plots_limit!r} must be an integer >= 0 (the "
                     "most residual heatmaps drawn per entity).")


def build(config: ml_collections.ConfigDict) -> Setup:
  """Loads and prepares the data, and builds the model the config names."""
  check_config(config)
  model_lib = models.get(config.model.name)
  prepared = prepare(load(config.data), config.data)
  alarms.check_lengths({e.name: e.parts for e in prepared.dataset.entities}, config)
  model = model_lib.build(config.model, num_features=prepared.num_features,
                          window=config.data.window)
  return Setup(config, prepared, model_lib, model)


def initial_params(setup: Setup, params_from: ParamsFrom | None):
  """Parameters converted from `config.init.torch_checkpoint`, or None for a fresh init."""
  config = setup.config
  if not config.init.torch_checkpoint:
    return None
  if params_from is None:
    raise ValueError(
        f"config.init.torch_checkpoint is {config.init.torch_checkpoint!r}, but the library "
        "reads no torch files: train with `python -m launch.train` (it converts the "
        "checkpoint), or pass params_from=interop.convert.start_params.")
  return params_from(config, setup.prepared.num_features)
