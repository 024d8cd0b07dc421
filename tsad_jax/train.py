"""The one training loop: a single run, the members of a fleet and the trials of a sweep.

Every training is `fit_members` over a member axis; a single run is a member
of one (`fit`). Randomness comes from `config.seed` only: it is split once
into an init key and a loop key, and step k draws `fold_in(loop_key, k)`;
epoch e visits a member's training windows in the order of a numpy generator
seeded with (seed, e). So a run resumed from a checkpoint draws exactly what
an uninterrupted run draws.

Devices: members are split over the first axis of a 2-D mesh and each
member's batch of window starts over the second (`distributed.member_mesh`,
over every process after `distributed.initialize`). The same program runs on
1 or N devices and, up to the order of float sums, computes the same.
"""

import dataclasses
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
  error: str = ""  # why training stopped short: the divergence message


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


def make_train_step(model_lib, model, tx, *, window: int, compute_dtype: str = "float32"):
  """The jitted `step_function` of one state, for benchmarks and checks; donates `state`."""
  return jax.jit(step_function(model_lib, model, tx, window=window, compute_dtype=compute_dtype),
                 donate_argnums=0)


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


@dataclasses.dataclass(frozen=True)
class Member:
  """One model the training loop trains: its data, and where it saves.

  `run_dir` receives its checkpoints (`<run_dir>/checkpoints/<step>/`) and
  per-epoch metrics (`<run_dir>/metrics.json`), and is where it resumes from;
  None keeps nothing. `optim` is its optimizer section (default `config.optim`):
  members may differ only in what their optimizer keeps in its state.
  """

  name: str
  series: np.ndarray  # the normalised training series, (T, D)
  train_starts: np.ndarray
  val_starts: np.ndarray
  run_dir: pathlib.Path | None = None
  optim: ml_collections.ConfigDict | None = None


@dataclasses.dataclass
class _Progress:
  """A member's progress through the loop."""

  member: Member
  steps_per_epoch: int
  total_steps: int
  manager: Any
  state: TrainState | None  # until stacked with the others'
  stopping: EarlyStopping
  epoch_loss: float = 0.0  # the loss summed over the current epoch's steps so far
  history: list[dict] = dataclasses.field(default_factory=list)
  step: int = 0
  order: np.ndarray | None = None
  epoch_start: float = 0.0
  error: str = ""  # why training stopped short (divergence)
  stopped: bool = False  # early stopping's verdict, on the host (read every step)

  @property
  def active(self) -> bool:
    return self.step < self.total_steps and not self.stopped and not self.error


def fit(config: ml_collections.ConfigDict, prepared: Prepared, run_dir: pathlib.Path, *,
        model_lib, model, stop_after_steps: int | None = None,
        initial_params=None) -> FitResult:
  """Trains `model` on `prepared.train`, resuming from the run's latest checkpoint.

  A member of one for `fit_members`; a divergence raises FloatingPointError.

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
  """
  member = Member(config.data.entity or config.data.dataset, prepared.train,
                  prepared.train_starts, prepared.val_starts, run_dir)
  (result,) = fit_members(config, [member], model_lib=model_lib, model=model,
                          stop_after_steps=stop_after_steps, initial_params=initial_params)
  if result.error:
    raise FloatingPointError(result.error)
  return result


def fit_members(config: ml_collections.ConfigDict, members: list[Member], *, model_lib, model,
                initial_params=None, optimizer=optim_lib.make_optimizer,
                stop_after_steps: int | None = None) -> list[FitResult]:
  """The training loop: every member trained at once by one jitted, vmapped step.

  Each member is the run `fit` makes of its data alone with the same config
  and seed: the same initial parameters, batches, random draws, validation and
  early stopping. Members with more windows take more steps an epoch (the
  schedule reads each member's epoch length from its optimizer state); a
  member whose training has ended keeps its state while the others step on.

  The devices form a 2-D mesh (`distributed.member_mesh`): members are split
  over its first axis, each member's batches over its second. Several
  processes (`distributed.initialize`) train one member together.

  Args:
    config: the shared config (`seed`, `train`, `optim`, `data.window`).
    members: what to train.
    model_lib: the model file; model: the linen module it built.
    initial_params: every member's starting parameters (default: a fresh init).
    optimizer: `(optim, *, steps_per_epoch, total_steps) -> optax transformation`,
      called with each member's `optim` for its state; one update function
      serves every member.
    stop_after_steps: save and return after this many steps, as a preempted
      job would.

  Returns:
    One FitResult per member.
  """
  train_cfg, window, batch_size = config.train, config.data.window, config.train.batch_size
  if batch_size < 1 or train_cfg.max_epochs < (0 if initial_params is not None else 1):
    raise ValueError("config.train.batch_size and config.train.max_epochs must be >= 1 "
                     "(max_epochs may be 0 when starting from config.init.torch_checkpoint).")
  if len(members) > 1 and jax.process_count() > 1:
    raise ValueError("Several processes train one model together; run fleets and sweeps in "
                     "one process each (a fleet per host, each with its own data.entities).")
  mesh = distributed.member_mesh(len(members))
  per_member = mesh.shape[distributed.AXIS]
  if batch_size % per_member:
    raise ValueError(f"config.train.batch_size={batch_size} must be a multiple of the number of "
                     f"devices ({per_member}): each step splits its batch evenly over them.")
  init_key, loop_key = jax.random.split(jax.random.PRNGKey(config.seed))
  eval_key = jax.random.fold_in(init_key, 1)
  if initial_params is None:
    initial_params = init_params(model, key=init_key, window=window,
                                 num_features=members[0].series.shape[1])
  rep = distributed.replicated(mesh)
  along, split = distributed.member_sharded(mesh), distributed.member_batch_sharded(mesh)
  tracks = [_open(config, m, initial_params, optimizer, rep) for m in members]
  _align(tracks, rep)
  # Idle copies of member 0 fill the member axis up to a multiple of its size.
  slots = math.ceil(len(tracks) / mesh.shape[distributed.MEMBERS]) * mesh.shape[
      distributed.MEMBERS]
  filled = tracks + [tracks[0]] * (slots - len(tracks))
  # Members that share their data (a run, a sweep's trials) share one copy of the series
  # and, with one seed, each step's batch; else each has its own series, padded to the
  # longest (no window reaches the padding).
  shared = _share_data(members)
  longest = max(len(t.member.series) for t in tracks)
  series = distributed.put(tracks[0].member.series, rep) if shared else distributed.put(np.stack([
      np.pad(t.member.series, ((0, longest - len(t.member.series)), (0, 0))) for t in filled]),
      along)
  states = distributed.put(stack_trees([t.state for t in filled]), along)
  for t in tracks:
    t.state = None  # the stacked copy is the live one
  tx = optimizer(config.optim, steps_per_epoch=1, total_steps=1)  # the lengths live in the state
  step_fn = make_member_step(model_lib, model, tx, window=window, mesh=mesh,
                             compute_dtype=train_cfg.compute_dtype, shared_data=shared)
  data_axis, data = ((None, (rep, distributed.batch_sharded(mesh))) if shared
                     else (0, (along, split)))
  loss_fn = jax.jit(jax.vmap(functools.partial(
      _window_losses, model=model, model_lib=model_lib, window=window),
      in_axes=(0, data_axis, data_axis, None)), in_shardings=(along, *data, rep),
      out_shardings=rep)
  put_starts = functools.partial(distributed.put, sharding=data[1])
  pick = jax.jit(lambda tree, i: jax.tree.map(lambda x: x[i], tree), out_shardings=rep)
  take = lambda tree, i: pick(tree, int(i))  # one member's part, replicated
  counters = jax.jit(optim_lib.nonfinite_counts, out_shardings=rep)  # every member's
  loop_key, eval_key = distributed.put((loop_key, eval_key), rep)
  main = distributed.is_main_process()

  def save(i: int) -> None:
    t = tracks[i]
    if t.manager is None or t.manager.latest_step() == t.step:
      return
    checkpoints.save(t.manager, t.step, {"state": take(states, i), "early_stopping": t.stopping,
                                         "epoch_loss": np.float32(t.epoch_loss)})
    if main:
      _write_history(t)

  def end_epoch(i: int, val_loss: float, skipped: int, in_a_row: int) -> None:
    t = tracks[i]
    record = {"epoch": t.step // t.steps_per_epoch, "step": t.step,
              "train_loss": t.epoch_loss / t.steps_per_epoch}
    t.epoch_loss = 0.0
    if len(t.member.val_starts):
      record["val_loss"] = val_loss
      params = take(states.params, i) if improves(t.stopping, val_loss) else None
      t.stopping = distributed.put(update_early_stopping(
          t.stopping, params, val_loss, record["epoch"], patience=train_cfg.patience), rep)
      t.stopped = bool(t.stopping.stopped)
    record["nonfinite_steps"] = skipped
    try:
      optim_lib.check_not_diverged(in_a_row, config.optim)
    except FloatingPointError as error:
      t.error = record["diverged"] = str(error)
    record["seconds"] = time.perf_counter() - t.epoch_start
    t.history.append(record)
    if main and t.member.run_dir is not None:
      _write_history(t)

  step = min((t.step for t in tracks if t.active), default=0)
  bar = tqdm.tqdm(total=max(t.total_steps for t in tracks), initial=step, desc="train",
                  unit="step", disable=not train_cfg.progress_bar or not main)
  # Summed on the device, read back only at epoch ends and saves (float32, as saved).
  epoch_losses = distributed.put(np.array([t.epoch_loss for t in filled], np.float32), rep)
  while any(t.active for t in tracks):
    active = np.array([t.active for t in filled]) & (np.arange(slots) < len(tracks))
    live = np.flatnonzero(active)
    # A new array every step: on CPU the device array may alias this memory while the
    # step, dispatched asynchronously, still reads it.
    starts = np.zeros((slots, batch_size), np.int32)
    for i in live:
      t = tracks[i]
      epoch, index = divmod(step, t.steps_per_epoch)
      if t.order is None or index == 0:
        t.order = epoch_order(config.seed, epoch, len(t.member.train_starts), batch_size)
        if index == 0 or not t.epoch_start:
          t.epoch_start = time.perf_counter()
      starts[i] = t.member.train_starts[t.order[index]]
    if shared:
      starts = starts[live[0]]  # every member's batch is the same
    states, losses = step_fn(states, series, put_starts(starts), loop_key,
                             distributed.put(active, rep))
    epoch_losses = epoch_losses + losses
    step += 1
    bar.update(1)
    for i in live:
      tracks[i].step = step
    if step % train_cfg.log_every == 0:
      bar.set_postfix(loss=f"{float(jnp.sum(losses)) / active.sum():.4g}")
    ended = [i for i in live if step % tracks[i].steps_per_epoch == 0]
    stopping_here = stop_after_steps is not None and step >= stop_after_steps
    if ended or stopping_here or step % train_cfg.checkpoint_every == 0:
      sums = np.asarray(epoch_losses)
      for i in live:
        tracks[i].epoch_loss = float(sums[i])
    if ended:
      val = _val_losses(loss_fn, states.params, series, filled, eval_key, batch_size,
                        put=put_starts, shared=shared)
      skipped, in_a_row = map(np.asarray, counters(states.opt_state))
      for i in ended:
        end_epoch(i, float(val[i]), int(skipped[i]), int(in_a_row[i]))
      epoch_losses = distributed.put(np.array([t.epoch_loss for t in filled], np.float32), rep)
    for i in live:
      if not tracks[i].active or step % train_cfg.checkpoint_every == 0:
        save(i)
    if stopping_here and any(t.active for t in tracks):
      break
  bar.close()
  for i in range(len(tracks)):
    save(i)
  return [_result(t, take(states, i)) for i, t in enumerate(tracks)]


def make_member_step(model_lib, model, tx, *, window: int, mesh, compute_dtype: str = "float32",
                     shared_data: bool = False):
  """`(states, series, starts, loop_key, active) -> (states, losses)`, jitted on `mesh`.

  `step_function` on every member at once: `states` and, unless `shared_data`,
  `series` and `starts` have a leading member axis. Members not `active` keep
  their state. Donates `states`.
  """
  step = step_function(model_lib, model, tx, window=window, compute_dtype=compute_dtype)
  data_axis = None if shared_data else 0

  def member_step(states, series, starts, loop_key, active):
    stepped, loss = jax.vmap(step, in_axes=(0, data_axis, data_axis, None))(states, series,
                                                                             starts, loop_key)
    keep = lambda new, old: jnp.where(active.reshape((-1,) + (1,) * (new.ndim - 1)), new, old)
    return jax.tree.map(keep, stepped, states), jnp.where(active, loss, 0.0)

  along, rep = distributed.member_sharded(mesh), distributed.replicated(mesh)
  data = ((rep, distributed.batch_sharded(mesh)) if shared_data
          else (along, distributed.member_batch_sharded(mesh)))
  return jax.jit(member_step, donate_argnums=0, in_shardings=(along, *data, rep, rep),
                 out_shardings=(along, rep))


def _share_data(members: list[Member]) -> bool:
  first = members[0]
  return all(m.series is first.series and m.train_starts is first.train_starts
             and m.val_starts is first.val_starts for m in members)


def _val_losses(loss_fn, params, series, tracks: list[_Progress], key, batch_size: int, *,
                put, shared: bool) -> np.ndarray:
  """Each member's mean per-window loss over its validation starts (NaN without any);
  with `shared` data every member has the first one's starts."""
  rows = tracks[:1] if shared else tracks
  counts = np.array([len(t.member.val_starts) for t in rows])
  batches = math.ceil(max(counts.max(), 1) / batch_size)
  starts = np.stack([np.resize(t.member.val_starts, batches * batch_size) if len(
      t.member.val_starts) else np.zeros(batches * batch_size, np.int32) for t in rows])
  totals = 0.0
  for b in range(batches):
    cols = slice(b * batch_size, (b + 1) * batch_size)
    batch = starts[0, cols] if shared else starts[:, cols]
    losses = np.asarray(loss_fn(params, series, put(batch), key), np.float64)
    counted = np.arange(b * batch_size, (b + 1) * batch_size)[None] < counts[:, None]
    totals = totals + np.where(counted, losses, 0.0).sum(axis=1)
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.where(counts > 0, totals / np.maximum(counts, 1), np.nan)


def _open(config, member: Member, params, optimizer, rep) -> _Progress:
  """A member's fresh state, or the one its run folder's latest checkpoint holds."""
  steps_per_epoch = math.ceil(len(member.train_starts) / config.train.batch_size)
  total_steps = config.train.max_epochs * steps_per_epoch
  params = jax.tree.map(jnp.asarray, params)
  tx = optimizer(member.optim or config.optim, steps_per_epoch=steps_per_epoch,
                 total_steps=max(total_steps, 1))
  state = TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params))
  manager = None
  if member.run_dir is not None:
    manager = checkpoints.manager(member.run_dir, max_to_keep=config.train.keep_checkpoints)
  track = _Progress(member, steps_per_epoch, total_steps, manager, state,
                    distributed.put(initial_early_stopping(params), rep))
  if manager is not None and manager.latest_step() is not None:
    _restore(track, None, rep)
  return track


def _restore(track: _Progress, step: int | None, rep) -> None:
  """Restores `step`, or with None the latest checkpoint that reads."""
  template = {**distributed.put({"state": track.state, "early_stopping": track.stopping}, rep),
              "epoch_loss": np.zeros((), np.float32)}
  if step is None:
    restored, _ = checkpoints.restore_latest(track.manager, template)
  else:
    restored = checkpoints.restore(track.manager, template, step=step)
  track.state = distributed.local(restored["state"])
  track.stopping = restored["early_stopping"]
  track.stopped = bool(track.stopping.stopped)
  track.epoch_loss = float(restored["epoch_loss"])
  track.step = int(track.state.step)
  history_path = track.member.run_dir / "metrics.json"
  track.history = (json.loads(history_path.read_text())[:track.step // track.steps_per_epoch]
                   if history_path.exists() else [])
  track.error = track.history[-1].get("diverged", "") if track.history else ""
  track.order = None


def _align(tracks: list[_Progress], rep) -> None:
  """On resume, brings the unfinished members to one step (a stop may fall between saves)."""
  steps = {t.step for t in tracks if t.active}
  if len(steps) < 2:
    return
  common = min(steps)
  for t in tracks:
    if t.active and t.step != common:
      if common not in t.manager.all_steps():
        raise ValueError(f"Cannot resume: {t.member.run_dir} has no checkpoint at step {common}, "
                         "where the other members stopped. Start a new run.")
      _restore(t, common, rep)


def _write_history(track: _Progress) -> None:
  path = track.member.run_dir / "metrics.json"
  path.write_text(json.dumps(track.history, indent=1))


def _result(track: _Progress, state: TrainState) -> FitResult:
  has_val = len(track.member.val_starts) > 0
  return FitResult(
      params=distributed.local(track.stopping.best_params if has_val else state.params),
      history=track.history, steps=track.step,
      nonfinite_steps=optim_lib.nonfinite_steps(state.opt_state),
      seconds=sum(h["seconds"] for h in track.history), finished=not track.active,
      error=track.error)


def initial_early_stopping(params) -> EarlyStopping:
  return EarlyStopping(best_loss=jnp.array(jnp.inf, jnp.float32),
                       best_params=jax.tree.map(jnp.copy, params),
                       best_epoch=jnp.array(-1, jnp.int32), bad_epochs=jnp.zeros((), jnp.int32),
                       stopped=jnp.array(False))


def improves(stopping: EarlyStopping, val_loss: float) -> bool:
  return bool(np.isfinite(val_loss) and val_loss < float(stopping.best_loss))


def update_early_stopping(stopping: EarlyStopping, params, val_loss: float, epoch: int, *,
                          patience: int) -> EarlyStopping:
  """`params` are kept when `val_loss` `improves` the best (None will do otherwise)."""
  if improves(stopping, val_loss):
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
  mngr = checkpoints.manager(run_dir)
  if step is None:
    tree, _ = checkpoints.restore_latest(mngr, None, fallback_sharding=first_device)
  else:
    tree = checkpoints.restore(mngr, None, step=step, fallback_sharding=first_device)
  tree = distributed.local(tree)
  if step is None and np.isfinite(tree["early_stopping"]["best_loss"]):
    return tree["early_stopping"]["best_params"]
  return tree["state"]["params"]
