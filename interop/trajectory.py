"""Many training steps of the project's optimizer on both sides of a parity pair.

The Flax side trains with `tsad_jax.optim.make_optimizer`, as every run does:
global-norm clipping, L2, Adam, the learning-rate schedule, and steps with
non-finite gradients skipped. The PyTorch twin trains with the same chain
restated on `torch.optim.Adam`. Both run in float64 (see interop/parity.py),
on the same batches and the same random draws, so any difference that grows
over the steps is a difference of the model, its layout or the optimizer, not
of rounding.
"""

import dataclasses
import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from interop import convert
from interop import noise as noise_lib
from interop import pair as pair_lib
from tsad_jax import optim as optim_lib

# After 100 float64 steps on real windows, parameters agree to 1e-15 (the small
# twins of tests/test_trajectory.py) up to 5e-13 (ML4ITS's published SMAP
# checkpoint), and losses to 1e-13 relative: rounding, amplified where Adam
# divides by a small second moment. Leaving out the clip, the L2 or the
# schedule moves the parameters by more than 1e-2 (the same tests).
PARAM_ATOL = 1e-10
LOSS_RTOL = 1e-10


@dataclasses.dataclass(frozen=True)
class Trajectory:
  losses: np.ndarray  # (steps,) the training loss before each step; NaN where non-finite
  params: dict  # torch key -> array after the last step
  skipped: int  # steps whose gradients were not finite


def scheduled_rate(optim: ml_collections.ConfigDict, count: int, *, total_steps: int,
                   steps_per_epoch: int) -> float:
  """The rate after `count` applied updates, restated from optim.learning_rate's doc."""
  if optim.schedule == "cosine":
    return optim.learning_rate * 0.5 * (1.0 + math.cos(math.pi * min(count, total_steps)
                                                       / max(total_steps, 1)))
  if optim.schedule == "step":
    return optim.learning_rate * optim.decay_rate ** (
        count // max(optim.decay_epochs * steps_per_epoch, 1))
  return optim.learning_rate


def flax_steps(pair: pair_lib.Pair, batches: np.ndarray, optim: ml_collections.ConfigDict, *,
               seed: int = 0) -> tuple[Trajectory, list]:
  """Trains `pair`'s Flax model in float64 on each batch in turn; also returns each
  step's random draws, for the twin."""
  with jax.enable_x64(True):
    pair = pair_lib.in_float64(pair)
    tx = optim_lib.make_optimizer(optim, steps_per_epoch=len(batches),
                                  total_steps=len(batches))

    @jax.jit
    def step(params, opt_state, x, key):
      def loss_fn(p):
        recorder = noise_lib.Recorder(pair.model)
        return pair.model_lib.loss(recorder, p, x, rng=key, train=True)[0], recorder.calls

      (loss, draws), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
      updates, opt_state = tx.update(grads, opt_state, params)
      return optax.apply_updates(params, updates), opt_state, loss, draws

    params, opt_state = pair.params, tx.init(pair.params)
    losses, all_draws = [], []
    for t, batch in enumerate(batches):
      key = jax.random.fold_in(jax.random.PRNGKey(seed), t)
      params, opt_state, loss, draws = step(params, opt_state, jnp.asarray(batch, jnp.float64),
                                            key)
      losses.append(float(loss))
      all_draws.append(jax.tree.map(np.asarray, draws))
    trained = convert.flax_to_torch(params, pair.entries)
    return (Trajectory(np.asarray(losses), trained, optim_lib.nonfinite_steps(opt_state)),
            all_draws)


def torch_steps(pair: pair_lib.Pair, batches: np.ndarray, optim: ml_collections.ConfigDict,
                draws: list) -> Trajectory:
  """Trains a float64 copy of `pair`'s twin with the chain of `flax_steps`, in torch."""
  import torch  # noqa: PLC0415

  with jax.enable_x64(True):
    module = pair_lib.in_float64(pair).module
  weights = list(module.parameters())
  optimizer = torch.optim.Adam(weights, lr=optim.learning_rate, eps=1e-8,
                               weight_decay=optim.l2)
  losses, applied, skipped = [], 0, 0
  for batch, step_draws in zip(batches, draws, strict=True):
    optimizer.zero_grad()
    loss = pair.twin.loss(module, torch.from_numpy(np.asarray(batch, np.float64)),
                          pair_lib.torch_tree(step_draws))
    loss.backward()
    losses.append(loss.item())
    for w in weights:  # optax updates every parameter; torch skips those without a grad
      if w.grad is None:
        w.grad = torch.zeros_like(w)
    if not all(torch.isfinite(w.grad).all() for w in weights):
      skipped += 1
      continue
    norm = math.sqrt(sum(float(torch.sum(w.grad ** 2)) for w in weights))
    if optim.grad_clip_norm and norm >= optim.grad_clip_norm:  # optax's clip_by_global_norm
      for w in weights:
        w.grad.mul_(optim.grad_clip_norm / norm)
    optimizer.param_groups[0]["lr"] = scheduled_rate(
        optim, applied, total_steps=len(batches), steps_per_epoch=len(batches))
    optimizer.step()
    applied += 1
  params = {k: v.detach().numpy() for k, v in module.state_dict().items()}
  return Trajectory(np.asarray(losses), params, skipped)


def compare(pair: pair_lib.Pair, batches: np.ndarray, optim: ml_collections.ConfigDict, *,
            seed: int = 0) -> list[pair_lib.Difference]:
  """Trains both sides on `batches` and compares: the losses of the finite steps, the
  number of steps skipped, and every parameter at the end."""
  flax_run, draws = flax_steps(pair, batches, optim, seed=seed)
  torch_run = torch_steps(pair, batches, optim, draws)
  finite = np.isfinite(flax_run.losses)
  steps = f"{len(batches)} steps"
  diffs = [pair_lib.difference(f"{steps}: finite losses", flax_run.losses[finite],
                             torch_run.losses[finite], tolerance=LOSS_RTOL, relative=True),
           pair_lib.difference(f"{steps}: where the loss is not finite", ~finite,
                             ~np.isfinite(torch_run.losses), tolerance=0.0),
           pair_lib.difference(f"{steps}: skipped steps", flax_run.skipped, torch_run.skipped,
                             tolerance=0.0)]
  for key, value in torch_run.params.items():
    diffs.append(pair_lib.difference(f"{steps}: {key}", flax_run.params[key], value,
                                   tolerance=PARAM_ATOL))
  return diffs
