"""The optimizer every model trains with, built from `config.optim`."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import optax

SCHEDULES = ("constant", "cosine", "step")


class EpochScheduleState(NamedTuple):
  """The step count and the run's length, so that runs of different lengths (the
  members of a fleet) share one update function."""

  count: jax.Array
  steps_per_epoch: jax.Array
  total_steps: jax.Array


def learning_rate(optim: ml_collections.ConfigDict, count, *, steps_per_epoch,
                  total_steps) -> jax.Array:
  """The rate at step `count`: constant | cosine (to 0 over the run) | step (x decay_rate
  every decay_epochs); the lengths may be traced arrays."""
  rate = jnp.asarray(optim.learning_rate)  # float32, or float64 under jax_enable_x64
  if optim.schedule == "cosine":
    fraction = jnp.minimum(count, total_steps) / jnp.maximum(total_steps, 1).astype(rate.dtype)
    return rate * 0.5 * (1.0 + jnp.cos(jnp.pi * fraction))
  if optim.schedule == "step":
    transitions = jnp.floor_divide(count, jnp.maximum(optim.decay_epochs * steps_per_epoch, 1))
    return rate * jnp.asarray(optim.decay_rate) ** transitions
  return rate


def scale_by_epoch_schedule(optim: ml_collections.ConfigDict, *, steps_per_epoch: int,
                            total_steps: int) -> optax.GradientTransformation:
  """Updates times minus the scheduled rate; the run's lengths live in the state."""
  if optim.schedule not in SCHEDULES:
    raise ValueError(f"config.optim.schedule={optim.schedule!r}; use {', '.join(SCHEDULES)}.")

  def init(params):
    del params
    return EpochScheduleState(jnp.zeros((), jnp.int32), jnp.asarray(steps_per_epoch, jnp.int32),
                              jnp.asarray(total_steps, jnp.int32))

  def update(updates, state, params=None):
    del params
    rate = learning_rate(optim, state.count, steps_per_epoch=state.steps_per_epoch,
                         total_steps=state.total_steps)
    updates = jax.tree.map(lambda u: (-rate * u).astype(u.dtype), updates)
    return updates, state._replace(count=optax.safe_increment(state.count))

  return optax.GradientTransformation(init, update)


def make_optimizer(optim: ml_collections.ConfigDict, *, steps_per_epoch: int,
                   total_steps: int) -> optax.GradientTransformation:
  """Adam with global-norm clipping, optional L2, a schedule, non-finite steps skipped.

  A step whose gradients hold NaN or inf leaves the parameters unchanged and is
  counted in the state's `total_notfinite` (optax.apply_if_finite); after
  `optim.max_consecutive_nonfinite` such steps in a row the update goes through,
  and `check_not_diverged` stops the run.
  """
  if optim.learning_rate <= 0:
    raise ValueError(f"config.optim.learning_rate must be > 0, got {optim.learning_rate}.")
  parts = []
  if optim.grad_clip_norm:
    parts.append(optax.clip_by_global_norm(optim.grad_clip_norm))
  if optim.l2:
    parts.append(optax.add_decayed_weights(optim.l2))
  parts += [optax.scale_by_adam(),
            scale_by_epoch_schedule(optim, steps_per_epoch=steps_per_epoch,
                                    total_steps=total_steps)]
  return optax.apply_if_finite(optax.chain(*parts), optim.max_consecutive_nonfinite)


def nonfinite_counts(opt_state) -> tuple[jax.Array, jax.Array]:
  """(updates skipped for non-finite gradients so far, of them in a row at the end), of
  `make_optimizer`'s state or one that holds it; with a leading axis for stacked states."""
  return tuple(optax.tree_utils.tree_get(opt_state, name)
               for name in ("total_notfinite", "notfinite_count"))


def nonfinite_steps(opt_state) -> int:
  """How many updates were skipped for non-finite gradients so far."""
  return int(nonfinite_counts(opt_state)[0])


def check_not_diverged(in_a_row: int, optim: ml_collections.ConfigDict) -> None:
  """Raises when the last `max_consecutive_nonfinite` steps all had non-finite gradients."""
  if in_a_row >= optim.max_consecutive_nonfinite:
    raise FloatingPointError(
        f"Training diverged: {in_a_row} steps in a row had NaN or inf "
        "gradients. Lower --config.optim.learning_rate or set --config.optim.grad_clip_norm; "
        "the run's checkpoints before this point are kept.")
