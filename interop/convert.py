"""PyTorch state_dict <-> Flax parameters, and a run folder from a torch checkpoint.

  python -m interop.convert --config=configs/smd_mtadgat.py --torch_checkpoint=model.pt \
      [--workdir=runs] [--config.field=value ...]

writes an ordinary run folder, holding the converted parameters as its only
checkpoint and their scores, that `launch.evaluate` re-scores. To fine-tune
from a checkpoint instead: `python -m launch.train --config=... \
--config.init.torch_checkpoint=model.pt`. The other way: `python -m interop.export`.

A checkpoint is a state_dict saved by `torch.save(module.state_dict(), path)`
(read with `torch.load(..., weights_only=True)`; a dict holding it under
"state_dict" or "model_state_dict" works too). The keys and shapes must be those
of the model's twin in interop/torch_models/; every missing key, unexpected key
and shape mismatch is listed, and nothing is written.
"""

from collections.abc import Mapping
import pathlib

from absl import app
from absl import flags
from absl import logging
import jax
import ml_collections
from ml_collections import config_flags
import numpy as np

from interop import layouts
from interop import torch_models
from tsad_jax import experiment
from tsad_jax import models
from tsad_jax import summaries
from tsad_jax import train


class ConversionError(ValueError):
  """A checkpoint that does not fit the configured model."""


def flax_shapes(model_config: ml_collections.ConfigDict, *, num_features: int, window: int):
  """The Flax parameter tree of the configured model, as shapes (nothing computed)."""
  model = models.get(model_config.name).build(model_config, num_features=num_features,
                                              window=window)
  return train.param_shapes(model, window=window, num_features=num_features)


def _leaves(tree) -> dict[tuple[str, ...], object]:
  flat = {}
  for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
    flat[tuple(str(p.key) for p in path)] = leaf
  return flat


def _nest(flat: Mapping[tuple[str, ...], np.ndarray]) -> dict:
  tree: dict = {}
  for path, value in flat.items():
    node = tree
    for key in path[:-1]:
      node = node.setdefault(key, {})
    node[path[-1]] = value
  return tree


def check_entries(entries: list[layouts.Entry], shapes) -> None:
  """Raises unless the entries cover every Flax parameter exactly once (a key-map bug)."""
  wanted = set(_leaves(shapes))
  covered = [path for entry in entries for path in entry.flax_paths]
  twice = sorted({p for p in covered if covered.count(p) > 1})
  problems = [f"Flax parameters not mapped: {sorted(wanted - set(covered))}",
              f"mapped but not in the model: {sorted(set(covered) - wanted)}",
              f"mapped twice: {twice}"]
  if set(covered) != wanted or twice:
    raise AssertionError("The key map does not match the Flax model. "
                         + "; ".join(p for p in problems if not p.endswith("[]")))


def expected_torch_shapes(entries: list[layouts.Entry], shapes) -> dict[str, tuple[int, ...]]:
  """The state_dict shape of every key, derived from the Flax shapes."""
  flat = _leaves(shapes)
  out = {}
  for entry in entries:
    zeros = [np.zeros(flat[path].shape, np.float32) for path in entry.flax_paths]
    for key, array in zip(entry.torch_keys, entry.to_torch(*zeros), strict=True):
      out[key] = tuple(array.shape)
  return out


def torch_to_flax(state_dict: Mapping[str, np.ndarray], entries: list[layouts.Entry], shapes, *,
                  source: str = "the state_dict") -> dict:
  """Flax parameters from a state_dict; raises ConversionError listing every mismatch."""
  expected = expected_torch_shapes(entries, shapes)
  state_dict = {k: np.asarray(v) for k, v in state_dict.items()}
  missing = [k for k in expected if k not in state_dict]
  unexpected = sorted(k for k in state_dict if k not in expected)
  wrong = [f"{k}: {tuple(state_dict[k].shape)} in the checkpoint, {shape} expected"
           for k, shape in expected.items() if k in state_dict and state_dict[k].shape != shape]
  if missing or unexpected or wrong:
    lines = ([f"missing keys: {', '.join(missing)}"] if missing else []) + (
        [f"unexpected keys: {', '.join(unexpected)}"] if unexpected else []) + wrong
    raise ConversionError(
        f"{source} does not fit this model config:\n  " + "\n  ".join(lines)
        + "\nCheck that the config (sizes, heads, options) is the one the checkpoint was "
        "trained with.")
  flat = {}
  for entry in entries:
    arrays = entry.to_flax(*(state_dict[k].astype(np.float32) for k in entry.torch_keys))
    flat.update(zip(entry.flax_paths, arrays, strict=True))
  return _nest(flat)


def flax_to_torch(params, entries: list[layouts.Entry]) -> dict[str, np.ndarray]:
  """A state_dict (numpy arrays, in the entries' order) from Flax parameters."""
  flat = {path: np.asarray(leaf) for path, leaf in _leaves(params).items()}
  out = {}
  for entry in entries:
    out.update(zip(entry.torch_keys, entry.to_torch(*(flat[p] for p in entry.flax_paths)),
                   strict=True))
  return out


def model_entries(model_config, *, num_features: int, window: int) -> list[layouts.Entry]:
  twin = torch_models.get(model_config.name)
  return twin.entries(model_config, num_features=num_features, window=window)


def load_state_dict(path: str | pathlib.Path) -> dict[str, np.ndarray]:
  """A state_dict file as numpy arrays (torch.load with weights_only=True)."""
  import torch  # noqa: PLC0415  (torch is an optional extra)

  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"{path}: no such torch checkpoint (a file written by "
                            "torch.save(module.state_dict(), path)).")
  loaded = torch.load(path, map_location="cpu", weights_only=True)
  for key in ("state_dict", "model_state_dict"):
    if isinstance(loaded, dict) and isinstance(loaded.get(key), dict):
      loaded = loaded[key]
  if not isinstance(loaded, dict) or not all(torch.is_tensor(v) for v in loaded.values()):
    raise ConversionError(f"{path} holds no state_dict (a dict of tensor names to tensors).")
  return {k: v.detach().cpu().numpy() for k, v in loaded.items()}


def save_state_dict(state_dict: Mapping[str, np.ndarray], path: str | pathlib.Path) -> None:
  """Writes a state_dict with torch.save; refuses to overwrite an existing file."""
  import torch  # noqa: PLC0415

  path = pathlib.Path(path)
  if path.exists():
    raise FileExistsError(f"{path} exists; give --out a new file name (nothing was written).")
  path.parent.mkdir(parents=True, exist_ok=True)
  torch.save({k: torch.from_numpy(np.array(v)) for k, v in state_dict.items()}, path)


def params_from_checkpoint(path, model_config, *, num_features: int, window: int) -> dict:
  """Flax parameters of the configured model from a torch checkpoint file."""
  shapes = flax_shapes(model_config, num_features=num_features, window=window)
  entries = model_entries(model_config, num_features=num_features, window=window)
  return torch_to_flax(load_state_dict(path), entries, shapes, source=str(path))


def start_params(config: ml_collections.ConfigDict, num_features: int) -> dict:
  """A run's starting parameters from `config.init.torch_checkpoint` (run_setup.ParamsFrom)."""
  return params_from_checkpoint(config.init.torch_checkpoint, config.model,
                                num_features=num_features, window=config.data.window)


def _define_flags() -> dict:
  flags.DEFINE_string("torch_checkpoint", None, "PyTorch state_dict file.", required=True)
  flags.DEFINE_string("workdir", "runs", "Folder the run folders go under.")
  return {"config": config_flags.DEFINE_config_file("config", None, "Experiment config file.",
                                                    lock_config=True)}


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  config, checkpoint = _FLAGS["config"].value, flags.FLAGS.torch_checkpoint
  with config.unlocked():
    config.init.torch_checkpoint = checkpoint
    config.train.max_epochs = 0  # score the converted parameters as they are
  run_dir = experiment.train_and_evaluate(config, flags.FLAGS.workdir, params_from=start_params)
  print(f"Converted {checkpoint} into the run {run_dir}")
  print(summaries.headline(summaries.load_summary(run_dir)))


if __name__ == "__main__":
  _FLAGS = _define_flags()  # only as a program: the library import defines no flags
  flags.mark_flags_as_required(["config"])
  app.run(main)
