"""The optimizer every model trains with, built from `config.optim`."""

import ml_collections
import optax


def learning_rate_schedule(optim: ml_collections.ConfigDict, *, steps_per_epoch: int,
                           total_steps: int) -> optax.Schedule:
  """constant | cosine (to 0 over the run) | step (x decay_rate every decay_epochs)."""
  lr = optim.learning_rate
  if optim.schedule == "constant":
    return optax.constant_schedule(lr)
  if optim.schedule == "cosine":
    return optax.cosine_decay_schedule(lr, decay_steps=max(total_steps, 1))
  if optim.schedule == "step":
    return optax.exponential_decay(
        lr, transition_steps=optim.decay_epochs * steps_per_epoch,
        decay_rate=optim.decay_rate, staircase=True)
  raise ValueError(
      f"config.optim.schedule={optim.schedule!r}; use constant, cosine or step.")


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
  schedule = learning_rate_schedule(
      optim, steps_per_epoch=steps_per_epoch, total_steps=total_steps)
  parts += [optax.scale_by_adam(), optax.scale_by_learning_rate(schedule)]
  return optax.apply_if_finite(optax.chain(*parts), optim.max_consecutive_nonfinite)


def nonfinite_steps(opt_state) -> int:
  """How many updates were skipped for non-finite gradients so far."""
  return int(opt_state.total_notfinite)


def check_not_diverged(opt_state, optim: ml_collections.ConfigDict) -> None:
  """Raises when the last `max_consecutive_nonfinite` steps all had non-finite gradients."""
  if int(opt_state.notfinite_count) >= optim.max_consecutive_nonfinite:
    raise FloatingPointError(
        f"Training diverged: {int(opt_state.notfinite_count)} steps in a row had NaN or inf "
        "gradients. Lower --config.optim.learning_rate or set --config.optim.grad_clip_norm; "
        "the run's checkpoints before this point are kept.")
