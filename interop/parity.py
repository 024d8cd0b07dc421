"""Runs a model in Flax and in its PyTorch twin on the same windows and parameters.

  python -m interop.parity --config=configs/smd_mtadgat.py [--torch_checkpoint=model.pt]
      [--windows=random|data] [--batch=8] [--steps=100] [--config.field=value ...]

Prints, per quantity, the largest absolute and relative difference: the
forward outputs, the loss and the anomaly scores in float32, as training runs
them; then, in float64 on both sides, the gradient of every parameter and one
Adam step; then, still in float64, `--steps` training steps of the project's
optimizer chain (config.optim: clipping, L2, schedule, non-finite steps
skipped) on both sides (interop/trajectory.py). Exits with status 1 when a
quantity is above its tolerance. Without a
checkpoint, the parameters are a fresh PyTorch init. `--windows=data` takes
windows of the configured data set's test series, and the training steps'
batches of the windows training fits on (after the same preparation as
training); `random` draws them uniformly in [0, 1]. Dropout is set to 0
(both frameworks draw their own masks); every other random draw the Flax model
makes is handed to the twin (interop/noise.py).

Relative difference of a tensor: max |flax - torch| / max |torch|.
"""

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
from interop import pair as pair_lib
from interop import trajectory

# Float32 agreement expected of a correct twin's outputs.
OUTPUT_ATOL = 1e-5
# Gradients and the Adam step are compared in float64. In float32 both are
# ill-conditioned: a gradient that cancels to a small value (feature_gat.lin of
# a fresh MTAD-GAT) keeps the rounding error of its large terms, up to 2e-4 of
# itself; and Adam's first step, lr * g / (|g| + eps), turns a gradient
# difference of d near |g| ~ eps into a step difference of up to lr * d / eps.
# Float64 shrinks both errors by 2^29 (~5e8), far below any difference a wrong
# formula or layout makes, so no element needs leaving out.
GRAD_RTOL = 1e-8
# Adam's first step is lr * sign(g) where |g| >> eps, so a wrong layout or
# tensor moves an element by ~lr (1e-3). Where g is zero in exact arithmetic
# (an attention key bias, which softmax cancels) each side keeps float64
# noise of ~1e-16 x its terms, and the step turns it into lr * noise / eps,
# below 1e-10 for terms up to 10.
ADAM_ATOL = 1e-10


def _numpy(value):
  return jax.tree.map(lambda t: t.detach().numpy() if hasattr(t, "detach") else np.asarray(t),
                      value)


def compare(pair: pair_lib.Pair, windows: np.ndarray, *,
            seed: int = 0) -> list[pair_lib.Difference]:
  """Forward outputs, loss and scores of both sides on `windows`, in float32."""
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
    out_torch = _numpy(twin.forward(pair.module, x_torch[:, :lookback], pair_lib.torch_tree(draws)))
  leaves, leaves_torch = jax.tree.leaves(out), jax.tree.leaves(out_torch)
  if len(leaves) != len(leaves_torch):
    raise ValueError(f"forward: Flax gives {len(leaves)} outputs, PyTorch {len(leaves_torch)}.")
  for i, (a, b) in enumerate(zip(leaves, leaves_torch, strict=True)):
    diffs.append(pair_lib.difference(f"forward output {i}", a, b, tolerance=OUTPUT_ATOL))

  (loss, _), draws = noise_lib.record(lib.loss, model, params, x, rng=loss_key, train=True)
  with torch.no_grad():
    loss_torch = twin.loss(pair.module, x_torch, pair_lib.torch_tree(draws))
  diffs.append(pair_lib.difference("loss", loss, loss_torch.numpy(), tolerance=OUTPUT_ATOL))

  for name, score_fn in (("score_parts", lib.HOOKS.score_parts), ("score", lib.score)):
    if score_fn is not None and hasattr(twin, name):
      value, draws = noise_lib.record(score_fn, model, params, x, rng=score_key)
      with torch.no_grad():
        value_torch = getattr(twin, name)(pair.module, x_torch, pair_lib.torch_tree(draws))
      diffs.append(pair_lib.difference(name, value, value_torch.numpy(), tolerance=OUTPUT_ATOL))
  return diffs


def gradients_and_adam_step(pair: pair_lib.Pair, windows: np.ndarray, *,
                            learning_rate: float = 1e-3,
                            seed: int = 0) -> list[pair_lib.Difference]:
  """In float64 on both sides: every parameter's gradient of the training loss, and
  the parameters after one step of Adam (optax.adam, torch.optim.Adam)."""
  import torch  # noqa: PLC0415

  with jax.enable_x64(True):
    pair = pair_lib.in_float64(pair)
    x = jnp.asarray(windows, jnp.float64)
    x_torch = torch.from_numpy(np.asarray(windows, np.float64))
    loss_key = jax.random.PRNGKey(seed)
    lib, model = pair.model_lib, pair.model
    loss_fn = lambda p: lib.loss(model, p, x, rng=loss_key, train=True)[0]
    _, draws = noise_lib.record(lib.loss, model, pair.params, x, rng=loss_key, train=True)
    tx = optax.adam(learning_rate)

    @jax.jit
    def gradient_and_step(params):
      grads = jax.grad(loss_fn)(params)
      updates, _ = tx.update(grads, tx.init(params), params)
      return grads, optax.apply_updates(params, updates)

    grads, stepped = (convert.flax_to_torch(t, pair.entries)
                      for t in gradient_and_step(pair.params))

  optimizer = torch.optim.Adam(pair.module.parameters(), lr=learning_rate)
  optimizer.zero_grad()
  pair.twin.loss(pair.module, x_torch, pair_lib.torch_tree(draws)).backward()
  diffs = []
  for key, p in pair.module.named_parameters():
    grad = p.grad.numpy() if p.grad is not None else np.zeros(p.shape)
    diffs.append(pair_lib.difference(f"grad {key}", grads[key], grad, tolerance=GRAD_RTOL,
                                     relative=True))
  optimizer.step()
  for key, value in pair.module.state_dict().items():
    diffs.append(pair_lib.difference(f"adam {key}", stepped[key], value.numpy(),
                                     tolerance=ADAM_ATOL))
  return diffs


def data_windows(config: ml_collections.ConfigDict, batch: int, seed: int, *,
                 part: str = "test") -> np.ndarray:
  """`batch` windows of the configured data set's "test" series or of the windows
  training fits on ("train"), prepared as for training."""
  from tsad_jax.data import load  # noqa: PLC0415
  from tsad_jax.data.prepare import prepare  # noqa: PLC0415

  prepared = prepare(load(config.data), config.data)
  window, rng = config.data.window, np.random.default_rng(seed)
  if part == "train":
    series, starts = prepared.train, rng.choice(prepared.train_starts, batch)
  else:
    series = prepared.test
    if len(series) < window:
      raise ValueError(f"The test series has {len(series)} points, fewer than a window "
                       f"({window}).")
    starts = rng.integers(0, len(series) - window + 1, batch)
  return np.stack([series[s:s + window] for s in starts]).astype(np.float32)


def _define_flags() -> None:
  config_flags.DEFINE_config_file("config", None, "Experiment config file.", lock_config=False)
  flags.DEFINE_string("torch_checkpoint", None, "PyTorch state_dict (optional).")
  flags.DEFINE_enum("windows", "random", ["random", "data"], "Which windows to run.")
  flags.DEFINE_integer("batch", 8, "Number of windows (per step, for --steps).")
  flags.DEFINE_integer("steps", 100, "Training steps of config.optim's optimizer on both sides "
                       "(interop/trajectory.py); 0: none.")
  flags.DEFINE_integer("seed", 0, "Seed of the windows, the init and the draws.")


def main(argv):
  del argv
  args = flags.FLAGS
  config, seed = args.config, args.seed
  windows = data_windows(config, args.batch, seed)  # also fixes the feature count
  batches = np.zeros((args.steps, *windows.shape), np.float32)
  if args.windows == "random":
    rng = np.random.default_rng(seed)
    windows = rng.uniform(size=windows.shape).astype(np.float32)
    batches = rng.uniform(size=batches.shape).astype(np.float32)
  elif args.steps:
    batches = data_windows(config, args.steps * args.batch, seed, part="train").reshape(
        batches.shape)
  state_dict = convert.load_state_dict(args.torch_checkpoint) if args.torch_checkpoint else None
  pair = pair_lib.make_pair(config.model, num_features=windows.shape[-1],
                            window=config.data.window, state_dict=state_dict, seed=seed)
  diffs = (compare(pair, windows, seed=seed) + gradients_and_adam_step(pair, windows, seed=seed)
           + (trajectory.compare(pair, batches, config.optim, seed=seed) if args.steps else []))
  print(pair_lib.report(diffs))
  above = [d.quantity for d in diffs if not d.ok]
  print(f"{len(above)} of {len(diffs)} quantities above tolerance." if above
        else f"All {len(diffs)} quantities within tolerance.")
  sys.exit(1 if above else 0)


if __name__ == "__main__":
  _define_flags()  # only as a program: the library import defines no flags
  flags.mark_flags_as_required(["config"])
  app.run(main)
