"""Training samples/s and scoring windows/s of a model on one data set.

  python -m bench.throughput [--config=configs/smd_lstmae.py:machine-1-6] [--steps=30]

Needs the data (data.root or $TSAD_JAX_DATA_ROOT). Prints the machine, then
one line per measurement. The first calls (compilation) are not timed.
"""

import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
from ml_collections import config_flags

from tsad_jax import experiment
from tsad_jax import runs
from tsad_jax import scoring
from tsad_jax import train

_CONFIG = config_flags.DEFINE_config_file(
    "config", "configs/smd_lstmae.py:machine-1-6", "Experiment config file.")
_STEPS = flags.DEFINE_integer("steps", 30, "Timed training steps.")


def training_samples_per_second(setup: experiment.Setup, steps: int) -> float:
  config, prepared = setup.config, setup.prepared
  batch = config.train.batch_size
  init_key, loop_key = jax.random.split(jax.random.PRNGKey(config.seed))
  state, tx = train.create_train_state(config, setup.model, init_key=init_key,
                                       num_features=prepared.num_features, steps_per_epoch=100)
  step_fn = train.make_train_step(setup.model_lib, setup.model, tx, window=config.data.window)
  series = jnp.asarray(prepared.train)
  order = train.epoch_order(config.seed, 0, len(prepared.train_starts), batch)
  batches = [jnp.asarray(prepared.train_starts[order[i % len(order)]]) for i in range(steps + 2)]
  for starts in batches[:2]:
    state, loss = step_fn(state, series, starts, loop_key)
  loss.block_until_ready()
  started = time.perf_counter()
  for starts in batches[2:]:
    state, loss = step_fn(state, series, starts, loop_key)
  loss.block_until_ready()
  return steps * batch / (time.perf_counter() - started)


def scoring_windows_per_second(setup: experiment.Setup) -> tuple[float, int]:
  config, prepared = setup.config, setup.prepared
  params = train.init_params(setup.model, key=jax.random.PRNGKey(0), window=config.data.window,
                             num_features=prepared.num_features)
  scorer = scoring.Scorer(setup.model_lib, setup.model, window=config.data.window,
                          batch_size=config.eval.batch_size, rule=config.eval.point_rule)
  key = jax.random.PRNGKey(0)
  length = prepared.test_lengths[0]
  series = prepared.test[:length]
  scorer(params, series[: config.data.window * 2], [config.data.window * 2], key)  # compile
  started = time.perf_counter()
  scorer(params, series, [length], key)
  windows = length - config.data.window + 1
  return windows / (time.perf_counter() - started), windows


def main(argv):
  del argv
  config = _CONFIG.value
  setup = experiment.build(config)
  print(f"machine: {runs.machine()}")
  print(f"model: {config.model.name}, data: {config.data.dataset}/{config.data.entity}, "
        f"window {config.data.window}, {setup.prepared.num_features} features")
  rate = training_samples_per_second(setup, _STEPS.value)
  print(f"training: {rate:,.0f} samples/s (batch {config.train.batch_size}, {_STEPS.value} steps)")
  rate, windows = scoring_windows_per_second(setup)
  print(f"scoring: {rate:,.0f} windows/s ({windows:,} test windows, "
        f"batch {config.eval.batch_size})")


if __name__ == "__main__":
  app.run(main)
