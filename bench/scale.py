"""Measurements for `bench.throughput`: fleet vs sequential, devices, scoring memory, a whole run.

Each function returns a markdown section. Device counts are fixed when JAX
starts, so the per-device and memory figures come from child processes
(`python -m bench.scale --child=...`), which print one JSON line.
"""

import copy
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags
import jax
import numpy as np

from bench import steps as steps_lib
from tsad_jax import config_names
from tsad_jax import distributed
from tsad_jax import experiment
from tsad_jax import fleet
from tsad_jax import optim as optim_lib
from tsad_jax import run_setup
from tsad_jax import scoring
from tsad_jax import train

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _config(name: str, entity: str, **fields):
  config = config_names.load(name)
  config.data.entity = entity
  config.train.progress_bar = False
  for field, value in fields.items():
    section, key = field.split(".")
    config[section][key] = value
  return config


def fleet_vs_sequential(config_name: str, entities: list[str], epochs: int) -> str:
  """Training wall time (compilation included) of `entities` one by one and as one fleet."""
  config = _config(config_name, entities[0], **{"train.max_epochs": epochs,
                                               "train.patience": 0})
  setups = []
  for name in entities:
    member = copy.deepcopy(config)
    member.data.entity = name
    setups.append(run_setup.build(member))
  with tempfile.TemporaryDirectory() as tmp:
    started = time.perf_counter()
    for setup in setups:
      run_dir = pathlib.Path(tmp) / "sequential" / setup.config.data.entity
      train.fit(setup.config, setup.prepared, run_dir, model_lib=setup.model_lib,
                model=setup.model)
    sequential = time.perf_counter() - started
    started = time.perf_counter()
    fleet.fit(config, setups, [pathlib.Path(tmp) / "fleet" / s.config.data.entity
                               for s in setups])
    together = time.perf_counter() - started
  windows = sum(len(s.prepared.train_starts) for s in setups)
  return (f"## Fleet vs sequential\n\n`{config_name}`, {len(entities)} SMD machines "
          f"({', '.join(entities)}), {epochs} epoch(s) each, {windows:,} training windows in "
          "all, early stopping off; training wall time including compilation, not scoring "
          "(the same for both).\n\n"
          "| sequential (s) | fleet (s) | speed-up |\n| --- | --- | --- |\n"
          f"| {sequential:.2f} | {together:.2f} | {sequential / together:.2f}x |\n")


def _child(args: list[str], devices: int = 1) -> dict:
  env = {**os.environ, "JAX_PLATFORMS": "cpu",
         "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
  done = subprocess.run([sys.executable, "-m", "bench.scale", *args], cwd=ROOT, env=env,
                        capture_output=True, text=True, check=False)
  if done.returncode:
    raise RuntimeError(f"bench.scale {' '.join(args)} failed:\n{done.stderr[-3000:]}")
  return json.loads(done.stdout.strip().splitlines()[-1])


def devices(config_name: str, entity: str, steps: int, counts=(1, 4)) -> str:
  """Training samples/s of the data-parallel step on 1 and on 4 forced host devices."""
  rates = {n: _child(["--child=train_rate", f"--config={config_name}", f"--entity={entity}",
                      f"--steps={steps}"], devices=n)["samples_per_second"] for n in counts}
  rows = "".join(f"| {n} | {rates[n]:,.0f} | {rates[n] / rates[counts[0]]:.2f}x |\n"
                 for n in counts)
  return (f"## One device vs {counts[-1]} forced host devices\n\n`{config_name}` on {entity}, "
          f"{steps} timed steps. The forced host devices share this machine's cores, so this "
          "measures the cost of splitting the batch, not a gain; on GPUs or a TPU each device "
          "brings its own compute.\n\n"
          "| devices | train (samples/s) | vs 1 |\n| --- | --- | --- |\n" + rows)


def scoring_memory(names: list[str], entity: str) -> str:
  """Peak resident memory of a process that loads one entity and scores its whole test."""
  rows = ""
  for name in names:
    figures = _child(["--child=score_memory", f"--config={name}", f"--entity={entity}"])
    rows += (f"| {name} | {figures['test_points']:,} | {figures['seconds']:.1f} | "
             f"{figures['peak_before_mb']:,.0f} | {figures['peak_mb']:,.0f} |\n")
  return (f"## Scoring the whole test series: time and peak memory\n\n{entity}; each model "
          "in a fresh process, freshly initialised parameters (scoring costs the same "
          "trained or not), compilation included. Peak is the process's maximum resident "
          "set, before scoring (data loaded, model built) and after.\n\n"
          "| config | test points | seconds | peak before (MB) | peak after (MB) |\n"
          "| --- | --- | --- | --- | --- |\n" + rows)


# ML4ITS mtad-gat-pytorch with its defaults (3 epochs, window 100) on machine-1-6, on this
# machine kind, as measured for issue 7: an initial loss pass of about 8 minutes, 361 s an
# epoch, about 5 minutes to score the test set, 4.9 GB peak memory.
ML4ITS_SECONDS = 8 * 60 + 3 * 361 + 5 * 60
ML4ITS_PEAK_MB = 4.9 * 1024


def full_run(config_name: str, entity: str) -> str:
  """Wall time and peak memory of one whole `launch.train` run, beside ML4ITS's."""
  figures = _child(["--child=full_run", f"--config={config_name}", f"--entity={entity}"])
  return (f"## A whole run against the PyTorch reference\n\n`python -m launch.train "
          f"--config=configs/{config_name}.py:{entity}` in a fresh process: load, train the "
          "config's epochs, score train and test, thresholds, metrics and plots. The reference "
          "is ML4ITS mtad-gat-pytorch with its defaults on the same machine and machine kind "
          "(its initial loss pass, 3 epochs and test scoring; measured once, not rerun by this "
          "command).\n\n"
          "| | tsad-jax | ML4ITS (PyTorch) | tsad-jax faster by |\n| --- | --- | --- | --- |\n"
          f"| wall time (s) | {figures['seconds']:.0f} | {ML4ITS_SECONDS} | "
          f"{ML4ITS_SECONDS / figures['seconds']:.1f}x |\n"
          f"| peak memory (MB) | {figures['peak_mb']:,.0f} | {ML4ITS_PEAK_MB:,.0f} | "
          f"{ML4ITS_PEAK_MB / figures['peak_mb']:.1f}x less |\n")


def _full_run(config_name: str, entity: str) -> dict:
  config = _config(config_name, entity)
  started = time.perf_counter()
  with tempfile.TemporaryDirectory() as workdir:
    experiment.train_and_evaluate(config, workdir)
  return {"seconds": time.perf_counter() - started, "peak_mb": _peak_mb()}


def _train_rate(config_name: str, entity: str, steps: int) -> dict:
  """The training loop's step (`train.make_member_step`) on one member, over every device."""
  setup = run_setup.build(_config(config_name, entity))
  config, prepared = setup.config, setup.prepared
  mesh = distributed.member_mesh(1)
  state, _ = steps_lib.state_and_step(setup)
  tx = optim_lib.make_optimizer(config.optim, steps_per_epoch=1, total_steps=1)
  step_fn = train.make_member_step(setup.model_lib, setup.model, tx, window=config.data.window,
                                   mesh=mesh)
  rep, along = distributed.replicated(mesh), distributed.member_sharded(mesh)
  states = distributed.put(train.stack_trees([state]), along)
  series = distributed.put(prepared.train[None], along)
  key, active = distributed.put((jax.random.PRNGKey(1), np.ones(1, bool)), rep)
  batches = [distributed.put(starts[None], distributed.member_batch_sharded(mesh))
             for starts in steps_lib.batches(setup, steps + 2, config.train.batch_size)]
  holder = {"states": states}

  def train_step(starts):
    holder["states"], loss = step_fn(holder["states"], series, starts, key, active)
    loss.block_until_ready()

  return {"samples_per_second":
          config.train.batch_size / steps_lib.seconds_per_item(train_step, batches)}


def _peak_mb() -> float:
  """This process's peak resident set (VmHWM; Linux). Not getrusage's ru_maxrss, which
  execve keeps from the parent process."""
  for line in pathlib.Path("/proc/self/status").read_text().splitlines():
    if line.startswith("VmHWM:"):
      return int(line.split()[1]) / 1024
  raise RuntimeError("No VmHWM in /proc/self/status: the memory figures need Linux.")


def _score_memory(config_name: str, entity: str) -> dict:
  setup = run_setup.build(_config(config_name, entity))
  prepared = setup.prepared
  params = train.init_params(setup.model, key=jax.random.PRNGKey(0),
                             window=setup.config.data.window,
                             num_features=prepared.num_features)
  before = _peak_mb()
  scorer = scoring.for_config(setup.model_lib, setup.model, setup.config)
  started = time.perf_counter()
  scores = scorer(params, prepared.test, prepared.test_lengths, jax.random.PRNGKey(2))
  np.asarray(scores)
  return {"test_points": len(prepared.test), "seconds": time.perf_counter() - started,
          "peak_before_mb": before, "peak_mb": _peak_mb()}


def _main(argv):
  del argv
  args = flags.FLAGS
  child = {"train_rate": lambda: _train_rate(args.config, args.entity, args.steps),
           "score_memory": lambda: _score_memory(args.config, args.entity),
           "full_run": lambda: _full_run(args.config, args.entity)}[args.child]
  print(json.dumps(child()))


if __name__ == "__main__":
  flags.DEFINE_enum("child", None, ["train_rate", "score_memory", "full_run"],
                    "Measurement to print.")
  flags.DEFINE_string("config", "smd_omni", "Config file in configs/.")
  flags.DEFINE_string("entity", "machine-1-6", "SMD machine.")
  flags.DEFINE_integer("steps", 20, "Timed training steps.")
  app.run(_main)
