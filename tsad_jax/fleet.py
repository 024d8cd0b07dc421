"""Fleet training: one model per entity (SMD machine, SMAP/MSL channel), all in one program.

Each member is the run `launch.train` makes for its entity alone with the same
config and seed: the same initial parameters, batches, random draws,
validation, early stopping and run folder. Their training states are stacked
on a leading member axis and one jitted, vmapped step trains them all. Each
member's series is padded to the longest (no window reaches the padding), and
a member whose training has ended (epochs done, stopped early, or diverged)
keeps its state while the others step on. Members with more windows take more
steps per epoch; the learning-rate schedule reads each member's own epoch
length from its optimizer state. The member axis is split over the local
devices (`distributed.mesh`), each device training its share of the members.
"""

import copy
import dataclasses
import functools
import json
import math
import pathlib
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pandas as pd
import tqdm

from tsad_jax import checkpoints
from tsad_jax import distributed
from tsad_jax import experiment
from tsad_jax import optim as optim_lib
from tsad_jax import run_setup
from tsad_jax import runs
from tsad_jax import summaries
from tsad_jax import train
from tsad_jax.data import fleet_entities


@dataclasses.dataclass
class Member:
  """One entity's training: its data, run folder and progress."""

  setup: run_setup.Setup
  run_dir: pathlib.Path
  steps_per_epoch: int
  total_steps: int
  manager: Any
  stopping: train.EarlyStopping
  history: list[dict]
  state: train.TrainState | None = None  # until stacked with the others'
  step: int = 0
  order: np.ndarray | None = None
  epoch_start: float = 0.0
  error: str = ""  # why training stopped short (divergence)

  @property
  def name(self) -> str:
    return self.setup.config.data.entity

  @property
  def active(self) -> bool:
    return self.step < self.total_steps and not bool(self.stopping.stopped) and not self.error


@dataclasses.dataclass(frozen=True)
class MemberResult:
  name: str
  run_dir: pathlib.Path
  status: str  # trained | already trained | stopped after N steps | the divergence message


def member_configs(config: ml_collections.ConfigDict) -> list[ml_collections.ConfigDict]:
  """One config per entity of `config.data.entities`: data.entity set, data.entities cleared."""
  if not config.data.entities:
    raise ValueError("config.data.entities is empty: name the fleet's entities (\"all\", or a "
                     "comma list of SMD machines or SMAP/MSL channels).")
  out = []
  for name in fleet_entities(config.data):
    member = copy.deepcopy(config)
    member.data.entity, member.data.entities = name, ""
    out.append(member)
  return out


def train_fleet(config: ml_collections.ConfigDict, workdir: str | pathlib.Path, *,
                stop_after_steps: int | None = None,
                params_from: run_setup.ParamsFrom | None = None) -> list[MemberResult]:
  """Trains one model per entity of `config.data.entities` and scores each into its run folder.

  All members share one run id, so `config.run_id` resumes the whole fleet:
  members already scored are kept, the others continue from their checkpoints.
  """
  if jax.process_count() > 1:
    raise ValueError("launch.train_fleet runs in one process; run one fleet per host, each with "
                     "its own config.data.entities.")
  configs = member_configs(config)
  setups = [run_setup.build(c) for c in configs]
  widths = {s.config.data.entity: s.prepared.num_features for s in setups}
  if len(set(widths.values())) > 1:
    raise ValueError(f"The fleet's entities have different numbers of features ({widths}); one "
                     "program trains models of one shape: list entities of one width.")
  run_id = config.run_id or runs.new_run_id([runs.run_parent(workdir, c) for c in configs])
  run_dirs = []
  for c in configs:
    with c.unlocked():
      c.run_id = run_id
    run_dirs.append(runs.open_run(workdir, c))
  todo = [i for i, d in enumerate(run_dirs) if not (d / "summary.json").exists()]
  results = {i: MemberResult(configs[i].data.entity, d, "already trained")
             for i, d in enumerate(run_dirs) if i not in todo}
  if todo:
    initial_params = run_setup.initial_params(setups[todo[0]], params_from)
    fits = fit(config, [setups[i] for i in todo], [run_dirs[i] for i in todo],
               stop_after_steps=stop_after_steps, initial_params=initial_params)
    for i, fitted in zip(todo, fits, strict=True):
      status = fitted if isinstance(fitted, str) else "trained"
      if isinstance(fitted, train.FitResult):
        if fitted.finished:
          experiment.report_trained(setups[i], fitted, run_dirs[i])
        else:
          status = f"stopped after {fitted.steps} steps"
      results[i] = MemberResult(configs[i].data.entity, run_dirs[i], status)
  return [results[i] for i in range(len(configs))]


def _member_step(states, series, starts, loop_key, active, *, step):
  """`step` on every member at once; members not `active` keep their state."""
  stepped, loss = jax.vmap(step, in_axes=(0, 0, 0, None))(states, series, starts, loop_key)
  keep = lambda new, old: jnp.where(active.reshape((-1,) + (1,) * (new.ndim - 1)), new, old)
  return jax.tree.map(keep, stepped, states), jnp.where(active, loss, 0.0)


def _member(tree, index: int):
  return jax.tree.map(lambda x: x[index], tree)


def _open_members(config, setups, run_dirs, params) -> list[Member]:
  """Fresh or restored members; on resume, the unfinished ones all at one step."""
  members = []
  for setup, run_dir in zip(setups, run_dirs, strict=True):
    steps_per_epoch = math.ceil(len(setup.prepared.train_starts) / config.train.batch_size)
    state, _ = train.create_train_state(config, setup.model, init_key=None,
                                        num_features=setup.prepared.num_features,
                                        steps_per_epoch=steps_per_epoch, initial_params=params)
    members.append(Member(
        setup=setup, run_dir=run_dir, steps_per_epoch=steps_per_epoch,
        total_steps=config.train.max_epochs * steps_per_epoch,
        manager=checkpoints.manager(run_dir, max_to_keep=config.train.keep_checkpoints),
        stopping=train.initial_early_stopping(state.params), history=[], state=state))
  latest = {i: m.manager.latest_step() for i, m in enumerate(members)}
  for i, step in latest.items():
    if step is not None:
      _restore(members[i], step)
  steps = {m.step for m in members if m.active}
  if len(steps) > 1:  # interrupted between saving one member and the next
    common = min(steps)
    for m in members:
      if m.active and m.step != common:
        if common not in m.manager.all_steps():
          raise ValueError(f"Cannot resume the fleet: {m.run_dir} has no checkpoint at step "
                           f"{common}, where the others stopped. Start a new fleet run.")
        _restore(m, common)
  return members


def _restore(member: Member, step: int) -> None:
  restored = checkpoints.restore(member.manager, {"state": member.state,
                                                  "early_stopping": member.stopping}, step=step)
  member.state, member.stopping = restored["state"], restored["early_stopping"]
  member.step = int(member.state.step)
  history_path = member.run_dir / "metrics.json"
  member.history = (json.loads(history_path.read_text())[:member.step // member.steps_per_epoch]
                    if history_path.exists() else [])
  member.error = member.history[-1].get("diverged", "") if member.history else ""


def fit(config: ml_collections.ConfigDict, setups: list[run_setup.Setup],
        run_dirs: list[pathlib.Path], *, stop_after_steps: int | None = None,
        initial_params=None) -> list[train.FitResult | str]:
  """`train.fit` for every member at once, into each member's run folder.

  Returns:
    Per member, its FitResult, or the message of its divergence.
  """
  train_cfg, window, batch_size = config.train, config.data.window, config.train.batch_size
  if batch_size < 1 or train_cfg.max_epochs < 1:
    raise ValueError("config.train.batch_size and config.train.max_epochs must be >= 1.")
  model_lib, model = setups[0].model_lib, setups[0].model
  init_key, loop_key = jax.random.split(jax.random.PRNGKey(config.seed))
  eval_key = jax.random.fold_in(init_key, 1)
  if initial_params is None:
    initial_params = train.init_params(model, key=init_key, window=window,
                                       num_features=setups[0].prepared.num_features)
  members = _open_members(config, setups, run_dirs, initial_params)
  # The member axis is split over the devices; idle copies of member 0 fill it up to a
  # multiple of their number.
  mesh = distributed.mesh()
  slots = math.ceil(len(members) / mesh.size) * mesh.size
  fill = [0] * (slots - len(members))
  split, rep = distributed.batch_sharded(mesh), distributed.replicated(mesh)
  longest = max(len(m.setup.prepared.train) for m in members)
  padded = [np.pad(m.setup.prepared.train, ((0, longest - len(m.setup.prepared.train)), (0, 0)))
            for m in members]
  series = distributed.put(np.stack(padded + [padded[i] for i in fill]), split)
  states = distributed.put(train.stack_trees([m.state for m in members]
                                             + [members[i].state for i in fill]), split)
  for m in members:
    m.state = None  # the stacked copy is the live one
  # One update function for all: each member's epoch length lives in its optimizer state.
  tx = optim_lib.make_optimizer(config.optim, steps_per_epoch=1, total_steps=1)
  member_step = train.step_function(model_lib, model, tx, window=window,
                                    compute_dtype=train_cfg.compute_dtype)
  step_fn = jax.jit(functools.partial(_member_step, step=member_step), donate_argnums=0,
                    in_shardings=(split, split, split, rep, split), out_shardings=(split, split))
  loss_fn = jax.jit(functools.partial(train._window_losses, model=model, model_lib=model_lib,
                                      window=window))

  def save(index: int) -> None:
    m = members[index]
    if m.manager.latest_step() != m.step:
      checkpoints.save(m.manager, m.step, {"state": _member(states, index),
                                           "early_stopping": m.stopping})
    runs.write_json(m.run_dir / "metrics.json", m.history)

  def end_epoch(index: int, epoch_loss: float) -> None:
    m = members[index]
    record = {"epoch": m.step // m.steps_per_epoch, "step": m.step,
              "train_loss": epoch_loss / m.steps_per_epoch}
    prepared = m.setup.prepared
    if len(prepared.val_starts):
      params = _member(states.params, index)
      record["val_loss"] = train.mean_loss(loss_fn, params, series[index], prepared.val_starts,
                                           eval_key, batch_size)
      m.stopping = train.update_early_stopping(m.stopping, params, record["val_loss"],
                                               record["epoch"], patience=train_cfg.patience)
    opt_state = _member(states.opt_state, index)
    record["nonfinite_steps"] = optim_lib.nonfinite_steps(opt_state)
    try:
      optim_lib.check_not_diverged(opt_state, config.optim)
    except FloatingPointError as error:
      m.error = record["diverged"] = f"{m.name}: {error}"
    record["seconds"] = time.perf_counter() - m.epoch_start
    m.history.append(record)
    runs.write_json(m.run_dir / "metrics.json", m.history)

  step = min((m.step for m in members if m.active), default=0)
  bar = tqdm.tqdm(total=max(m.total_steps for m in members), initial=step, desc="fleet",
                  unit="step", disable=not train_cfg.progress_bar)
  epoch_losses = jnp.zeros((slots,), jnp.float32)
  while any(m.active for m in members):
    active = np.array([m.active for m in members] + [False] * len(fill))
    # A new array every step: on CPU the device array may alias this memory while the
    # step, dispatched asynchronously, still reads it.
    starts = np.zeros((slots, batch_size), np.int32)
    for i, m in enumerate(members):
      if active[i]:
        epoch, index = divmod(step, m.steps_per_epoch)
        if m.order is None or index == 0:
          m.order = train.epoch_order(config.seed, epoch, len(m.setup.prepared.train_starts),
                                      batch_size)
          if index == 0 or not m.epoch_start:
            m.epoch_start = time.perf_counter()
        starts[i] = m.setup.prepared.train_starts[m.order[index]]
    states, losses = step_fn(states, series, distributed.put(starts, split), loop_key,
                             distributed.put(active, split))
    epoch_losses = epoch_losses + losses
    step += 1
    bar.update(1)
    ended = []
    for i, m in enumerate(members):
      if active[i]:
        m.step = step
        if step % m.steps_per_epoch == 0:
          ended.append(i)
    if ended:
      totals = np.asarray(epoch_losses, np.float64)
      for i in ended:
        end_epoch(i, float(totals[i]))
      epoch_losses = epoch_losses.at[np.array(ended)].set(0.0)
    for i, m in enumerate(members):
      if active[i] and (not m.active or step % train_cfg.checkpoint_every == 0):
        save(i)
    if stop_after_steps is not None and step >= stop_after_steps and any(
        m.active for m in members):
      for i, m in enumerate(members):
        if m.active:
          save(i)
      break
  bar.close()
  return [m.error or _result(m, _member(states, i), finished=not m.active)
          for i, m in enumerate(members)]


def _result(member: Member, state: train.TrainState, *, finished: bool) -> train.FitResult:
  has_val = len(member.setup.prepared.val_starts) > 0
  return train.FitResult(
      params=member.stopping.best_params if has_val else state.params,
      history=member.history, steps=member.step,
      nonfinite_steps=optim_lib.nonfinite_steps(state.opt_state),
      seconds=sum(h["seconds"] for h in member.history), finished=finished)


def write_table(results: list[MemberResult], path: pathlib.Path) -> list[dict]:
  """One row per member (status, leading metrics, run folder) into the CSV `path`."""
  rows = []
  for r in results:
    row = {"entity": r.name, "status": r.status}
    if (r.run_dir / "summary.json").exists():
      summary = summaries.load_summary(r.run_dir)
      figures = summary["threshold_free"]["mean"]
      row.update({k: figures[k] for k in ("VUS-PR", "AUC-PR")})
      row["epochs"] = summary.get("training", {}).get("epochs")
    row["run_dir"] = str(r.run_dir)
    rows.append(row)
  path.parent.mkdir(parents=True, exist_ok=True)
  pd.DataFrame(rows).to_csv(path, index=False)
  return rows
