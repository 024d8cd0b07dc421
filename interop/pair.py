"""One model in Flax and in its PyTorch twin with the same parameters, and how the
two sides' values differ.

Relative difference of a tensor: max |flax - torch| / max |torch|.
"""

import copy
import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from interop import convert
from interop import torch_models
from tsad_jax import models


@dataclasses.dataclass(frozen=True)
class Difference:
  quantity: str
  max_abs: float
  max_rel: float
  tolerance: float
  relative: bool  # which of the two the tolerance applies to

  @property
  def ok(self) -> bool:
    return (self.max_rel if self.relative else self.max_abs) <= self.tolerance


def difference(quantity: str, flax_value, torch_value, *, tolerance: float,
               relative: bool = False) -> Difference:
  a = np.asarray(flax_value, np.float64)
  b = np.asarray(torch_value, np.float64)
  if a.shape != b.shape:
    raise ValueError(f"{quantity}: Flax shape {a.shape}, PyTorch shape {b.shape}.")
  abs_diff = float(np.max(np.abs(a - b), initial=0.0))
  return Difference(quantity, abs_diff, abs_diff / max(float(np.max(np.abs(b), initial=0.0)),
                                                       1e-30), tolerance, relative)


def without_dropout(model_config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A copy with every `*dropout*` rate at 0: the two frameworks draw different masks."""
  out = ml_collections.ConfigDict(model_config.to_dict())
  for key, value in out.items():
    if "dropout" in key and isinstance(value, float):
      out[key] = 0.0
  return out


@dataclasses.dataclass
class Pair:
  """One model in both frameworks with the same parameters."""
  model_config: ml_collections.ConfigDict
  model_lib: object
  model: object
  twin: object
  module: object  # torch.nn.Module
  params: dict
  entries: list
  num_features: int
  window: int


def make_pair(model_config, *, num_features: int, window: int, state_dict=None,
              seed: int = 0) -> Pair:
  """Builds both models; parameters from `state_dict`, else from a seeded torch init."""
  import torch  # noqa: PLC0415

  model_config = without_dropout(model_config)
  model_lib = models.get(model_config.name)
  model = model_lib.build(model_config, num_features=num_features, window=window)
  twin = torch_models.get(model_config.name)
  torch.manual_seed(seed)
  module = twin.build(model_config, num_features=num_features, window=window)
  entries = twin.entries(model_config, num_features=num_features, window=window)
  shapes = convert.flax_shapes(model_config, num_features=num_features, window=window)
  if state_dict is None:
    state_dict = {k: v.detach().numpy() for k, v in module.state_dict().items()}
  params = convert.torch_to_flax(state_dict, entries, shapes)
  module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in
                          convert.flax_to_torch(params, entries).items()})
  module.eval()  # dropout is 0; eval() also keeps torch from caching anything per mode
  return Pair(model_config, model_lib, model, twin, module, params, entries, num_features,
              window)


def torch_tree(tree):
  import torch  # noqa: PLC0415

  return jax.tree.map(lambda a: torch.from_numpy(np.array(a)), tree)


def in_float64(pair: Pair) -> Pair:
  """A copy of `pair` whose parameters, on both sides, are float64; use it inside
  `jax.enable_x64(True)`, where the Flax model then computes in float64."""
  params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), pair.params)
  return dataclasses.replace(pair, params=params, module=copy.deepcopy(pair.module).double())


def report(diffs: list[Difference]) -> str:
  lines = [f"{'quantity':48s} {'max abs':>10s} {'max rel':>10s}  tolerance"]
  for d in diffs:
    flag = "" if d.ok else "  <-- ABOVE"
    kind = "rel" if d.relative else "abs"
    lines.append(f"{d.quantity:48s} {d.max_abs:10.2e} {d.max_rel:10.2e}  {kind} "
                 f"{d.tolerance:.0e}{flag}")
  return "\n".join(lines)
