"""The one training loop every model shares.

Randomness comes from `config.seed` only: it is split once into an init key
and a loop key, and step k draws `fold_in(loop_key, k)`; epoch e visits the
training windows in the order of a numpy generator seeded with (seed, e). So a
run resumed from a checkpoint draws exactly what an uninterrupted run draws.

Data parallel: each step splits its batch of window starts over every device
(`distributed.mesh()`, of every process after `distributed.initialize`);
parameters, optimizer state and the series are replicated. The same program
runs on 1 or N devices and, up to the order of float sums, computes the same.
"""

import functools
import json
import math
import pathlib
import time
from typing import Any
from typing import NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import tqdm

from tsad_jax import checkpoints
from tsad_jax import distributed
from tsad_jax import optim as optim_lib
from tsad_jax.data import windows as windows_lib
from tsad_jax.data.prepare import Prepared


class TrainState(flax.struct.PyTreeNode):
  step: jax.Array
  params: Any
  opt_state: Any


class EarlyStopping(flax.struct.PyTreeNode):
  """Best validation loss so far, its parameters, and epochs since it improved."""

  best_loss: jax.Array
  best_params: Any
  best_epoch: jax.Array
  bad_epochs: jax.Array
  stopped: jax.Array


class FitResult(NamedTuple):
  params: Any  # parameters with the best validation loss (the last ones without validation)
  history: list[dict[str, float]]  # one entry per finished epoch
  steps: int
  nonfinite_steps: int
  seconds: float
  finished: bool  # False when interrupted by `stop_after_steps`


def init_params(model, *, key: jax.Array, window: int, num_features: int):
  """Parameters for windows of `window` points (or of `model.lookback`, for forecasters
  that read fewer points than a window holds)."""
  params_key, dropout_key, sample_key = jax.random.split(key, 3)
  dummy = jnp.zeros((1, getattr(model, "lookback", window), num_features), jnp.float32)
  rngs = {"params": params_key, "dropout": dropout_key, "sample": sample_key}
  return jax.jit(model.init)(rngs, dummy)["params"]  # one compilation, not one per operation


COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def _cast(tree, dtype):
  return jax.tree.map(lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x,
                      tree)


def _train_step(state, series, starts, loop_key, *, model, model_lib, tx, window,
                compute_dtype=jnp.float32):
  windows = windows_lib.take_windows(series, starts, window)
  rng = jax.random.fold_in(loop_key, state.step)

  def loss_fn(params):
    if compute_dtype == jnp.float32:
      return model_lib.loss(model, params, windows, rng=rng, train=True)
    # Mixed precision: the forward and backward pass in compute_dtype; the float32
    # parameters get float32 gradients through the cast.
    loss, aux = model_lib.loss(model, _cast(params, compute_dtype),
                               windows.astype(compute_dtype), rng=rng, train=True)
    return loss.astype(jnp.float32), aux

  (loss, _), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  params = jax.tree.map(lambda p, u: p + u, state.params, updates)
  return state.replace(step=state.step + 1, params=params, opt_state=opt_state), loss


def create_train_state(config, model, *, init_key, num_features: int, steps_per_epoch: int,
                       initial_params=None):
  """Fresh optimizer state, and the optimizer, for `initial_params` (default: a fresh init)."""
  params = initial_params
  if params is None:
    params = init_params(model, key=init_key, window=config.data.window,
                         num_features=num_features)
  params = jax.tree.map(jnp.asarray, params)
  tx = optim_lib.make_optimizer(config.optim, steps_per_epoch=steps_per_epoch,
                                total_steps=max(config.train.max_epochs * steps_per_epoch, 1))
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params)), tx


def step_function(model_lib, model, tx, *, window: int, compute_dtype: str = "float32"):
  """`(state, series, starts, loop_key) -> (state, loss)`, not jitted (fleets vmap it)."""
  if compute_dtype not in COMPUTE_DTYPES:
    raise ValueError(f"config.train.compute_dtype={compute_dtype!r}; use "
                     f"{' or '.join(COMPUTE_DTYPES)}.")
  return functools.partial(_train_step, model=model, model_lib=model_lib, tx=tx, window=window,
                           compute_dtype=COMPUTE_DTYPES[compute_dtype])


def make_train_step(model_lib, model, tx, *, window: int, mesh=None,
                    compute_dtype: str = "float32"):
  """The jitted `step_function`; donates `state`.

  With `mesh`, `starts` is split over its devices and the rest replicated
  (`data_parallel`); without, a plain jit, for callers that vmap it.
  """
  step = step_function(model_lib, model, tx, window=window, compute_dtype=compute_dtype)
  if mesh is None:
    return jax.jit(step, donate_argnums=0)
  return data_parallel(step, mesh, donate_argnums=0)


def data_parallel(fn, mesh, **jit_kwargs):
  """`fn(state_or_params, series, starts, key)` jitted with `starts` split over `mesh`'s
  devices, everything else (outputs too) replicated."""
  rep = distributed.replicated(mesh)
  return jax.jit(fn, in_shardings=(rep, rep, distributed.batch_sharded(mesh), rep),
                 out_shardings=rep, **jit_kwargs)


def _window_losses(params, series, starts, key, *, model, model_lib, window):
  """Loss of each window on its own, so padded batches can be masked exactly."""
  windows = windows_lib.take_windows(series, starts, window)
  one = lambda w: model_lib.loss(model, params, w[None], rng=key, train=False)[0]
  return jax.vmap(one)(windows)


def epoch_order(seed: int, epoch: int, num_windows: int, batch_size: int) -> np.ndarray:
  """(steps_per_epoch, batch_size) window indices; the last batch wraps around."""
  order = np.random.default_rng([seed, epoch]).permutation(num_windows)
  steps = math.ceil(num_windows / batch_size)
  return np.resize(order, steps * batch_size).reshape(steps, batch_size)


def mean_loss(loss_fn, params, series, starts: np.ndarray, key, batch_size: int, *,
              put_batch=jnp.asarray) -> float:
  """Mean per-window loss over `starts`, in fixed-size batches placed by `put_batch`."""
  total, count = 0.0, len(starts)
  for begin in range(0, count, batch_size):
    batch = starts[begin:begin + batch_size]
    padded = np.resize(batch, batch_size)
    losses = loss_fn(params, series, put_batch(padded), key)
    total += float(jnp.sum(losses[:len(batch)]))
  return total / count


def fit(config: ml_collections.ConfigDict, prepared: Prepared, run_dir: pathlib.Path, *,
        model_lib, model, stop_after_steps: int | None = None,
        initial_params=None) -> FitResult:
  """Trains `model` on `prepared.train`, resuming from the run's latest checkpoint.

  Args:
    config: the run's config (`seed`, `train`, `optim`, `data.window`).
    prepared: normalised series and window starts.
    run_dir: the run folder; checkpoints go to `<run_dir>/checkpoints/<step>/`
      and per-epoch metrics to `<run_dir>/metrics.json`.
    model_lib: the model file (`tsad_jax.models.get(name)`).
    model: the linen module it built.
    stop_after_steps: save a checkpoint and return after this many steps in
      total, as a preempted job would (for tests and chunked jobs).
    initial_params: parameters to start from instead of a fresh init (a
      converted checkpoint); with `config.train.max_epochs` 0 they are saved
      and returned untrained.

  Returns:
    A FitResult.
  """
  train_cfg, window = config.train, config.data.window
  batch_size = train_cfg.batch_size
  if batch_size < 1 or train_cfg.max_epochs < (0 if initial_params is not None else 1):
    raise ValueError("config.train.batch_size and config.train.max_epochs must be >= 1 "
                     "(max_epochs may be 0 when starting from config.init.torch_checkpoint).")
  mesh = distributed.mesh()
  if batch_size % mesh.size:
    raise ValueError(f"config.train.batch_size={batch_size} must be a multiple of the number of "
                     f"devices ({mesh.size}): each step splits its batch evenly over them.")
  rep = distributed.replicated(mesh)
  put_batch = functools.partial(distributed.put, sharding=distributed.batch_sharded(mesh))
  main = distributed.is_main_process()
  num_windows = len(prepared.train_starts)
  steps_per_epoch = math.ceil(num_windows / batch_size)
  total_steps = train_cfg.max_epochs * steps_per_epoch

  init_key, loop_key = jax.random.split(jax.random.PRNGKey(config.seed))
  eval_key = jax.random.fold_in(init_key, 1)
  state, tx = create_train_state(config, model, init_key=init_key,
                                 num_features=prepared.num_features,
                                 steps_per_epoch=steps_per_epoch, initial_params=initial_params)
  state = distributed.put(state, rep)
  stopping = distributed.put(initial_early_stopping(state.params), rep)

  mngr = checkpoints.manager(run_dir, max_to_keep=train_cfg.keep_checkpoints)
  history_path = run_dir / "metrics.json"
  history: list[dict[str, float]] = []
  if mngr.latest_step() is not None:
    restored = checkpoints.restore(mngr, {"state": state, "early_stopping": stopping})
    state, stopping = restored["state"], restored["early_stopping"]
    done_epochs = int(state.step) // steps_per_epoch
    history = json.loads(history_path.read_text())[:done_epochs] if history_path.exists() else []

  step_fn = make_train_step(model_lib, model, tx, window=window, mesh=mesh,
                            compute_dtype=train_cfg.compute_dtype)
  loss_fn = data_parallel(functools.partial(
      _window_losses, model=model, model_lib=model_lib, window=window), mesh)
  series, loop_key, eval_key, zero = distributed.put(
      (prepared.train, loop_key, eval_key, np.zeros((), np.float32)), rep)
  train_starts = prepared.train_starts

  def save(step):
    if mngr.latest_step() == step:
      return
    checkpoints.save(mngr, step, {"state": state, "early_stopping": stopping})  # every process
    if main:
      history_path.write_text(json.dumps(history, indent=1))

  step = int(state.step)
  stopped = bool(stopping.stopped)
  bar = tqdm.tqdm(total=total_steps, initial=step, desc="train", unit="step",
                  disable=not train_cfg.progress_bar or not main)
  epoch_loss, epoch_start = zero, time.perf_counter()
  order = None
  while step < total_steps and not stopped:
    epoch, index = divmod(step, steps_per_epoch)
    if order is None or index == 0:
      order = epoch_order(config.seed, epoch, num_windows, batch_size)
      if index == 0:
        epoch_loss, epoch_start = zero, time.perf_counter()
    starts = put_batch(train_starts[order[index]])
    state, loss = step_fn(state, series, starts, loop_key)
    epoch_loss = epoch_loss + loss
    step += 1
    bar.update(1)
    if step % train_cfg.log_every == 0:
      bar.set_postfix(loss=f"{float(loss):.4g}")

    if step % steps_per_epoch == 0:
      record = {"epoch": epoch + 1, "step": step,
                "train_loss": float(epoch_loss) / steps_per_epoch}
      if len(prepared.val_starts):
        val = mean_loss(loss_fn, state.params, series, prepared.val_starts, eval_key, batch_size,
                        put_batch=put_batch)
        record["val_loss"] = val
        stopping = distributed.put(update_early_stopping(
            stopping, state.params, val, epoch + 1, patience=train_cfg.patience), rep)
        stopped = bool(stopping.stopped)
      record["nonfinite_steps"] = optim_lib.nonfinite_steps(state.opt_state)
      optim_lib.check_not_diverged(state.opt_state, config.optim)
      record["seconds"] = time.perf_counter() - epoch_start
      history.append(record)
      if main:
        history_path.write_text(json.dumps(history, indent=1))
      bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k.endswith("loss")})
    if step % train_cfg.checkpoint_every == 0 or step == total_steps or stopped:
      save(step)
    if stop_after_steps is not None and stop_after_steps <= step < total_steps:
      save(step)
      bar.close()
      return FitResult(distributed.local(state.params), history, step,
                       optim_lib.nonfinite_steps(state.opt_state),
                       sum(h["seconds"] for h in history), finished=False)
  bar.close()
  save(step)
  best = stopping.best_params if len(prepared.val_starts) else state.params
  return FitResult(distributed.local(best), history, step,
                   optim_lib.nonfinite_steps(state.opt_state),
                   sum(h["seconds"] for h in history), finished=True)


def initial_early_stopping(params) -> EarlyStopping:
  return EarlyStopping(best_loss=jnp.array(jnp.inf, jnp.float32),
                       best_params=jax.tree.map(jnp.copy, params),
                       best_epoch=jnp.array(-1, jnp.int32), bad_epochs=jnp.zeros((), jnp.int32),
                       stopped=jnp.array(False))


def update_early_stopping(stopping: EarlyStopping, params, val_loss: float, epoch: int, *,
                           patience: int) -> EarlyStopping:
  if np.isfinite(val_loss) and val_loss < float(stopping.best_loss):
    return stopping.replace(best_loss=jnp.asarray(val_loss, jnp.float32),
                            best_params=jax.tree.map(jnp.copy, params),
                            best_epoch=jnp.asarray(epoch, jnp.int32),
                            bad_epochs=jnp.zeros((), jnp.int32))
  bad = int(stopping.bad_epochs) + 1
  return stopping.replace(bad_epochs=jnp.asarray(bad, jnp.int32),
                          stopped=jnp.asarray(patience > 0 and bad >= patience))


def stack_trees(trees):
  """One tree of arrays with a leading axis over `trees` (stacked on the host: no compiling)."""
  return jax.tree.map(lambda *xs: jnp.asarray(np.stack([np.asarray(x) for x in xs])), *trees)


def param_shapes(model, *, window: int, num_features: int):
  """The parameter tree `init_params` makes, as shapes (nothing computed)."""
  return jax.eval_shape(lambda key: init_params(model, key=key, window=window,
                                                num_features=num_features),
                        jax.random.PRNGKey(0))


def check_params_fit(params, model, *, window: int, num_features: int, source: str) -> None:
  """Raises ValueError, naming `source`, unless `params` has the tree and shapes `model` needs."""
  expected = param_shapes(model, window=window, num_features=num_features)
  shapes = lambda tree: {jax.tree_util.keystr(path): tuple(np.shape(leaf)) for path, leaf
                         in jax.tree_util.tree_flatten_with_path(tree)[0]}
  have, want = shapes(params), shapes(expected)
  problems = ([f"missing: {k}" for k in want if k not in have]
              + [f"not in the model: {k}" for k in have if k not in want]
              + [f"{k}: {have[k]} saved, {want[k]} needed" for k in want
                 if k in have and have[k] != want[k]])
  if problems:
    listed = "\n  ".join(problems[:12] + ([f"... {len(problems) - 12} more"]
                                         if len(problems) > 12 else []))
    raise ValueError(
        f"{source} holds parameters that do not fit the model its config builds:\n  {listed}\n"
        "It was probably saved by an older tsad-jax with another parameter layout (the "
        "recurrent cells took PyTorch's layout on 2026-11-26): train it again, or score it "
        "with the version that wrote it.")


def load_params(run_dir: pathlib.Path, *, step: int | None = None):
  """Parameters saved in a run: the best-validation ones of the latest checkpoint,
  or, given `step`, the training parameters at that step; on this process's first
  device, whatever devices trained the run."""
  first_device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  tree = distributed.local(checkpoints.restore(checkpoints.manager(run_dir), None, step=step,
                                               fallback_sharding=first_device))
  if step is None and np.isfinite(tree["early_stopping"]["best_loss"]):
    return tree["early_stopping"]["best_params"]
  return tree["state"]["params"]
