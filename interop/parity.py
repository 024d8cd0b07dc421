"""Runs a model in Flax and in its PyTorch twin on the same windows and parameters.

  python -m interop.parity --config=configs/smd_mtadgat.py [--torch_checkpoint=model.pt]
      [--windows=random|data] [--batch=8] [--config.field=value ...]

Prints, per quantity, the largest absolute and relative difference: the
forward outputs, the loss, the gradient of every parameter and the anomaly
scores; exits with status 1 when one is above its tolerance. Without a
checkpoint, the parameters are a fresh PyTorch init. `--windows=data` takes
windows of the configured data set's test series (after the same preparation
as training); `random` draws them uniformly in [0, 1]. Dropout is set to 0
(both frameworks draw their own masks); every other random draw the Flax model
makes is handed to the twin (interop/noise.py).

Relative difference of a tensor: max |flax - torch| / max |torch|.
"""

import dataclasses
import sys

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import ml_collections
from ml_collections import config_flags
import numpy as np
import optax

from interop import convert
from interop import noise as noise_lib
from interop import torch_models
from tsad_jax import models

# Float32 agreement expected of a correct twin.
OUTPUT_ATOL = 1e-5
GRAD_RTOL = 1e-4
ADAM_ATOL = 1e-6


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


def _torch_tree(tree):
  import torch  # noqa: PLC0415

  return jax.tree.map(lambda a: torch.from_numpy(np.array(a)), tree)


def _numpy(value):
  return jax.tree.map(lambda t: t.detach().numpy() if hasattr(t, "detach") else np.asarray(t),
                      value)


def compare(pair: Pair, windows: np.ndarray, *, seed: int = 0) -> list[Difference]:
  """Forward outputs, loss, gradients and scores of both sides on `windows`."""
  import torch  # noqa: PLC0415

  key = jax.random.PRNGKey(seed)
  loss_key, score_key, forward_key = jax.random.split(key, 3)
  x = jnp.asarray(windows, jnp.float32)
  x_torch = torch.from_numpy(np.asarray(windows, np.float32))
  lib, model, twin, params = pair.model_lib, pair.model, pair.twin, pair.params
  diffs = []

  lookback = getattr(model, "lookback", pair.window)
  forward = lambda m, p, w: m.apply({"params": p}, w[:, :lookback],
                                    rngs={"sample": forward_key, "dropout": forward_key})
  out, draws = noise_lib.record(forward, model, params, x)
  with torch.no_grad():
    out_torch = _numpy(twin.forward(pair.module, x_torch[:, :lookback], _torch_tree(draws)))
  leaves, leaves_torch = jax.tree.leaves(out), jax.tree.leaves(out_torch)
  if len(leaves) != len(leaves_torch):
    raise ValueError(f"forward: Flax gives {len(leaves)} outputs, PyTorch {len(leaves_torch)}.")
  for i, (a, b) in enumerate(zip(leaves, leaves_torch, strict=True)):
    diffs.append(difference(f"forward output {i}", a, b, tolerance=OUTPUT_ATOL))

  (loss, _), draws = noise_lib.record(lib.loss, model, params, x, rng=loss_key, train=True)
  for p in pair.module.parameters():
    p.grad = None
  loss_torch = twin.loss(pair.module, x_torch, _torch_tree(draws))
  loss_torch.backward()
  diffs.append(difference("loss", loss, loss_torch.detach().numpy(), tolerance=OUTPUT_ATOL))

  grads = jax.jit(jax.grad(lambda p: lib.loss(model, p, x, rng=loss_key, train=True)[0]))(
      params)
  grads_torch = {k: (p.grad.numpy() if p.grad is not None else np.zeros(p.shape, np.float32))
                 for k, p in pair.module.named_parameters()}
  for k, g in convert.flax_to_torch(grads, pair.entries).items():
    diffs.append(difference(f"grad {k}", g, grads_torch[k], tolerance=GRAD_RTOL, relative=True))

  for name, score_fn in (("score_parts", lib.HOOKS.score_parts), ("score", lib.score)):
    if score_fn is not None and hasattr(twin, name):
      value, draws = noise_lib.record(score_fn, model, params, x, rng=score_key)
      with torch.no_grad():
        value_torch = getattr(twin, name)(pair.module, x_torch, _torch_tree(draws))
      diffs.append(difference(name, value, value_torch.numpy(), tolerance=OUTPUT_ATOL))
  return diffs


def adam_step(pair: Pair, windows: np.ndarray, *, learning_rate: float = 1e-3,
              seed: int = 0) -> list[Difference]:
  """One Adam step on each side from the same parameters: the new parameters' difference.

  Adam's first step moves an element by about lr * g / (|g| + eps), so an
  element whose true gradient is zero (an attention key bias, which softmax
  cancels) moves by up to lr in the direction of each framework's rounding
  noise. Elements whose PyTorch gradient is below GRAD_RTOL x the tensor's
  largest are left out here (the gradient comparison covers them); the
  quantity's name says how many.
  """
  import torch  # noqa: PLC0415

  x = jnp.asarray(windows, jnp.float32)
  x_torch = torch.from_numpy(np.asarray(windows, np.float32))
  loss_key = jax.random.PRNGKey(seed)
  loss_fn = lambda p, m=pair.model: pair.model_lib.loss(m, p, x, rng=loss_key, train=True)[0]
  _, draws = noise_lib.record(pair.model_lib.loss, pair.model, pair.params, x, rng=loss_key,
                              train=True)
  tx = optax.adam(learning_rate)

  @jax.jit
  def adam(params):
    updates, _ = tx.update(jax.grad(loss_fn)(params), tx.init(params), params)
    return optax.apply_updates(params, updates)

  stepped = convert.flax_to_torch(adam(pair.params), pair.entries)

  optimizer = torch.optim.Adam(pair.module.parameters(), lr=learning_rate)
  optimizer.zero_grad()
  pair.twin.loss(pair.module, x_torch, _torch_tree(draws)).backward()
  grads = {k: p.grad for k, p in pair.module.named_parameters()}
  optimizer.step()
  diffs = []
  for key, value in pair.module.state_dict().items():
    grad = grads[key].numpy() if grads.get(key) is not None else np.zeros(value.shape)
    signal = np.abs(grad) > GRAD_RTOL * np.max(np.abs(grad), initial=0.0)
    name = f"adam {key}" + ("" if signal.all() else f" ({(~signal).sum()} zero-gradient "
                                                     "elements left out)")
    diffs.append(difference(name, stepped[key][signal], value.numpy()[signal],
                            tolerance=ADAM_ATOL))
  return diffs


def data_windows(config: ml_collections.ConfigDict, batch: int, seed: int) -> np.ndarray:
  """`batch` windows of the configured test series, prepared as for training."""
  from tsad_jax.data import load  # noqa: PLC0415
  from tsad_jax.data.prepare import prepare  # noqa: PLC0415

  test = prepare(load(config.data), config.data).test
  window = config.data.window
  if len(test) < window:
    raise ValueError(f"The test series has {len(test)} points, fewer than a window ({window}).")
  starts = np.random.default_rng(seed).integers(0, len(test) - window + 1, batch)
  return np.stack([test[s:s + window] for s in starts]).astype(np.float32)


def report(diffs: list[Difference]) -> str:
  lines = [f"{'quantity':48s} {'max abs':>10s} {'max rel':>10s}  tolerance"]
  for d in diffs:
    flag = "" if d.ok else "  <-- ABOVE"
    kind = "rel" if d.relative else "abs"
    lines.append(f"{d.quantity:48s} {d.max_abs:10.2e} {d.max_rel:10.2e}  {kind} "
                 f"{d.tolerance:.0e}{flag}")
  return "\n".join(lines)


def _define_flags() -> None:
  config_flags.DEFINE_config_file("config", None, "Experiment config file.", lock_config=False)
  flags.DEFINE_string("torch_checkpoint", None, "PyTorch state_dict (optional).")
  flags.DEFINE_enum("windows", "random", ["random", "data"], "Which windows to run.")
  flags.DEFINE_integer("batch", 8, "Number of windows.")
  flags.DEFINE_integer("seed", 0, "Seed of the windows, the init and the draws.")


def main(argv):
  del argv
  args = flags.FLAGS
  config, seed = args.config, args.seed
  windows = data_windows(config, args.batch, seed)  # also fixes the feature count
  if args.windows == "random":
    windows = np.random.default_rng(seed).uniform(size=windows.shape).astype(np.float32)
  state_dict = convert.load_state_dict(args.torch_checkpoint) if args.torch_checkpoint else None
  pair = make_pair(config.model, num_features=windows.shape[-1], window=config.data.window,
                   state_dict=state_dict, seed=seed)
  diffs = compare(pair, windows, seed=seed) + adam_step(pair, windows, seed=seed)
  print(report(diffs))
  above = [d.quantity for d in diffs if not d.ok]
  print(f"{len(above)} of {len(diffs)} quantities above tolerance." if above
        else f"All {len(diffs)} quantities within tolerance.")
  sys.exit(1 if above else 0)


if __name__ == "__main__":
  _define_flags()  # only as a program: the library import defines no flags
  flags.mark_flags_as_required(["config"])
  app.run(main)
