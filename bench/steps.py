"""The library's training step on real batches, as every speed section times it."""

import time

import jax
import numpy as np

from tsad_jax import run_setup
from tsad_jax import train


def batches(setup: run_setup.Setup, count: int, batch: int, seed: int = 0) -> list[np.ndarray]:
  """`count` batches of `batch` training window starts, in training order."""
  starts = setup.prepared.train_starts
  order = train.epoch_order(seed, 0, len(starts), batch)
  return [starts[order[i % len(order)]] for i in range(count)]


def state_and_step(setup: run_setup.Setup, *, params=None):
  """(train state from `params`, or a seed-0 init; the jitted library train step)."""
  config = setup.config
  state, tx = train.create_train_state(config, setup.model, init_key=jax.random.PRNGKey(0),
                                       num_features=setup.prepared.num_features,
                                       steps_per_epoch=100, initial_params=params)
  return state, train.make_train_step(setup.model_lib, setup.model, tx,
                                      window=config.data.window)


def seconds_per_item(fn, items, warmup: int = 2) -> float:
  """Seconds per item of `fn` over `items[warmup:]`; `fn` must block until done."""
  for item in items[:warmup]:
    fn(item)
  started = time.perf_counter()
  for item in items[warmup:]:
    fn(item)
  return (time.perf_counter() - started) / (len(items) - warmup)
