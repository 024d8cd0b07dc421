"""Speed: every model in JAX and PyTorch, fleet vs sequential, devices, scoring memory.

  python -m bench.throughput [--sections=models,phases,profile,fleet,devices,memory,full_run]
      [--configs=smd_lstmae,smd_omni,...] [--entity=machine-1-6] [--steps=20]
      [--score_batches=10] [--torch] [--fleet_config=smd_omni] [--fleet_entities=all]
      [--fleet_epochs=2] [--out=docs/PERFORMANCE.md]

Needs the data ($TSAD_JAX_DATA_ROOT or data.root). Sections:
- models: per model (its default config), both frameworks run in this one
  process on the same CPU, the same training batches (the config's batch size)
  and the same parameters (the PyTorch twin's init, converted): training is one
  Adam step per batch (JAX: the library's jitted train step; PyTorch: eager
  forward, backward and torch.optim.Adam), scoring is the model's score on
  eval.batch_size windows. Dropout is off in both (the twins are compared
  without it). The first calls (compilation, warm-up) are not timed. "whole
  test" is the library's scorer on the entity's whole test series. Ratios are
  JAX / PyTorch: above 1, JAX is faster.
- phases: milliseconds of the forward pass, the backward pass and the whole
  step in both frameworks.
- profile: JAX's train step under XLA's profiler, its time by op kind (see
  bench/profile.py).
- fleet, devices, memory, full_run (MTAD-GAT's whole run against the public
  PyTorch port's): see bench/scale.py.
With --out each section goes to docs/performance/<section>.md and the report
to --out, machine named; sections not rerun are kept.
"""

import dataclasses
import pathlib
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

from bench import profile
from bench import scale
from bench import steps as steps_lib
from interop import pair as pair_lib
from tsad_jax import config_names
from tsad_jax import run_setup
from tsad_jax import runs
from tsad_jax import scoring
from tsad_jax import train
import tsad_jax.data as data_lib

MODEL_CONFIGS = ("smd_lstmae", "smd_lstmae_pred", "smd_lstmae_clf", "smd_omni",
                 "smd_transformer", "smd_mtadgat", "smd_mscred", "smd_sdmae")



def _define_flags() -> None:
  """Only when run as a program: importing this module (tests) defines no flags."""
  flags.DEFINE_list("configs", list(MODEL_CONFIGS), "Config files in configs/.")
  flags.DEFINE_string("entity", "machine-1-6", "SMD machine the batches come from.")
  flags.DEFINE_integer("steps", 20, "Timed training steps per framework.")
  flags.DEFINE_integer("score_batches", 10, "Timed scoring batches.")
  flags.DEFINE_boolean("torch", True, "Also time the PyTorch twins.")
  flags.DEFINE_string("out", "", "Markdown file to write the report to.")
  flags.DEFINE_list("sections", list(SECTIONS), "What to measure: " + ", ".join(SECTIONS) + ".")
  flags.DEFINE_string("fleet_config", "smd_omni", "Config of the fleet and device sections.")
  flags.DEFINE_string("fleet_entities", "all", "SMD machines of the fleet section.")
  flags.DEFINE_integer("fleet_epochs", 2, "Epochs per machine in the fleet section.")


@dataclasses.dataclass
class Row:
  config: str
  batch: int
  train_jax: float  # samples/s
  score_jax: float  # windows/s
  whole_test_seconds: float
  train_torch: float | None = None
  score_torch: float | None = None


def _windows(setup: run_setup.Setup, starts: np.ndarray) -> np.ndarray:
  window = setup.config.data.window
  return np.stack([setup.prepared.train[s:s + window] for s in starts]).astype(np.float32)


_timed = steps_lib.seconds_per_item


def jax_rates(setup: run_setup.Setup, params, steps: int, score_batches: int):
  """(training samples/s, scoring windows/s, seconds to score the whole test series)."""
  config, prepared = setup.config, setup.prepared
  batch, window = config.train.batch_size, config.data.window
  state, step_fn = steps_lib.state_and_step(setup, params=params)
  series, loop_key = jnp.asarray(prepared.train), jax.random.PRNGKey(1)
  holder = {"state": state}

  def train_step(starts):
    holder["state"], loss = step_fn(holder["state"], series, jnp.asarray(starts), loop_key)
    loss.block_until_ready()

  train_rate = batch / _timed(train_step, steps_lib.batches(setup, steps + 2, batch))

  eval_batch = config.eval.batch_size
  score_fn = jax.jit(lambda p, w: setup.model_lib.score(setup.model, p, w,
                                                        rng=jax.random.PRNGKey(2)))
  score_starts = steps_lib.batches(setup, score_batches + 2, eval_batch, seed=1)
  windows = [jnp.asarray(_windows(setup, s)) for s in score_starts]
  score_rate = eval_batch / _timed(lambda w: score_fn(params, w).block_until_ready(), windows)

  scorer = scoring.for_config(setup.model_lib, setup.model, config)
  length = prepared.test_lengths[0]
  scorer(params, prepared.test[:2 * window], [2 * window], jax.random.PRNGKey(0))  # compile
  started = time.perf_counter()
  scorer(params, prepared.test[:length], [length], jax.random.PRNGKey(0))
  return train_rate, score_rate, time.perf_counter() - started


def torch_rates(setup: run_setup.Setup, pair, steps: int, score_batches: int):
  """(training samples/s, scoring windows/s) of the PyTorch twin on the same batches."""
  import torch  # noqa: PLC0415

  from interop import noise as noise_lib  # noqa: PLC0415

  config = setup.config
  batch, eval_batch = config.train.batch_size, config.eval.batch_size
  module, twin, lib = pair.module, pair.twin, setup.model_lib
  key = jax.random.PRNGKey(3)

  def draws(fn, windows, **kwargs):
    """The Flax model's random draws on `windows`, reused by every timed PyTorch call."""
    _, calls = noise_lib.record(fn, setup.model, pair.params, jnp.asarray(windows), rng=key,
                                **kwargs)
    return jax.tree.map(lambda a: torch.from_numpy(np.array(a)), calls)

  train_windows = [_windows(setup, s) for s in steps_lib.batches(setup, steps + 2, batch)]
  train_noise = draws(lib.loss, train_windows[0], train=True)
  optimizer = torch.optim.Adam(module.parameters(), lr=config.optim.learning_rate)
  module.train()

  def train_step(windows):
    optimizer.zero_grad()
    twin.loss(module, torch.from_numpy(windows), train_noise).backward()
    optimizer.step()

  train_rate = batch / _timed(train_step, train_windows)

  score_starts = steps_lib.batches(setup, score_batches + 2, eval_batch, seed=1)
  score_windows = [_windows(setup, s) for s in score_starts]
  score_noise = draws(lib.score, score_windows[0])
  module.eval()

  def score_step(windows):
    with torch.no_grad():
      twin.score(module, torch.from_numpy(windows), score_noise)

  return train_rate, eval_batch / _timed(score_step, score_windows)


def measure(name: str, entity: str, steps: int, score_batches: int, with_torch: bool) -> Row:
  config = config_names.load(name)
  config.data.entity = entity
  config.model = pair_lib.without_dropout(config.model)
  setup = run_setup.build(config)
  pair = None
  if with_torch:
    pair = pair_lib.make_pair(config.model, num_features=setup.prepared.num_features,
                            window=config.data.window)
    params = pair.params
  else:
    params = train.init_params(setup.model, key=jax.random.PRNGKey(0),
                               window=config.data.window,
                               num_features=setup.prepared.num_features)
  row = Row(name, config.train.batch_size, *jax_rates(setup, params, steps, score_batches))
  if pair is not None:
    row.train_torch, row.score_torch = torch_rates(setup, pair, steps, score_batches)
  return row


def phases(name: str, entity: str, steps: int) -> dict[str, float]:
  """Milliseconds per training batch of the forward pass, forward + backward, and the whole
  step (with Adam), in JAX and in the PyTorch twin: where each framework spends a step."""
  import torch  # noqa: PLC0415

  from interop import noise as noise_lib  # noqa: PLC0415

  config = config_names.load(name)
  config.data.entity = entity
  config.model = pair_lib.without_dropout(config.model)
  setup = run_setup.build(config)
  pair = pair_lib.make_pair(config.model, num_features=setup.prepared.num_features,
                          window=config.data.window)
  lib, model, params, key = setup.model_lib, setup.model, pair.params, jax.random.PRNGKey(3)
  starts = steps_lib.batches(setup, steps + 2, config.train.batch_size)
  windows = [_windows(setup, s) for s in starts]
  loss = lambda p, w: lib.loss(model, p, w, rng=key, train=True)[0]
  forward, grad = jax.jit(loss), jax.jit(jax.grad(loss))
  state, step = steps_lib.state_and_step(setup, params=params)
  series = jnp.asarray(setup.prepared.train)
  holder = {"state": state}

  def jax_step(s):
    holder["state"], value = step(holder["state"], series, jnp.asarray(s), key)
    value.block_until_ready()

  jax_windows = [jnp.asarray(w) for w in windows]
  out = {
      "jax forward": _timed(lambda w: forward(params, w).block_until_ready(), jax_windows),
      "jax forward+backward": _timed(
          lambda w: jax.block_until_ready(grad(params, w)), jax_windows),
      "jax step": _timed(jax_step, starts),
  }
  _, calls = noise_lib.record(lib.loss, model, params, jax_windows[0], rng=key, train=True)
  drawn = jax.tree.map(lambda a: torch.from_numpy(np.array(a)), calls)
  module, twin = pair.module, pair.twin
  module.train()
  optimizer = torch.optim.Adam(module.parameters(), lr=config.optim.learning_rate)
  torch_windows = [torch.from_numpy(w) for w in windows]

  def torch_forward(w):
    with torch.no_grad():
      twin.loss(module, w, drawn)

  def torch_backward(w):
    module.zero_grad()
    twin.loss(module, w, drawn).backward()

  def torch_step(w):
    torch_backward(w)
    optimizer.step()

  out["torch forward"] = _timed(torch_forward, torch_windows)
  out["torch forward+backward"] = _timed(torch_backward, torch_windows)
  out["torch step"] = _timed(torch_step, torch_windows)
  return {k: 1000 * v for k, v in out.items()}


def phases_section(names: list[str], entity: str, steps: int) -> str:
  keys = ("forward", "forward+backward", "step")
  lines = ["## Where a training step goes\n",
           f"Milliseconds per training batch on {entity} (`--sections=phases --steps={steps}`): "
           "the forward pass (PyTorch without autograd), forward and backward, and the whole "
           "step with Adam (JAX's includes cutting the windows from the series on the device). "
           "backward = forward+backward - forward.\n",
           "| config | JAX forward | JAX backward | JAX step | PyTorch forward | "
           "PyTorch backward | PyTorch step |",
           "| --- | --- | --- | --- | --- | --- | --- |"]
  for name in names:
    ms = phases(name, entity, steps)
    cells = []
    for framework in ("jax", "torch"):
      f, fb, st = (ms[f"{framework} {k}"] for k in keys)
      cells += [f"{f:.1f}", f"{fb - f:.1f}", f"{st:.1f}"]
    lines.append(f"| {name} | " + " | ".join(cells) + " |")
    print(lines[-1], flush=True)
  return "\n".join(lines) + "\n"


def _ratio(a: float, b: float | None) -> str:
  return f"{a / b:.2f}x" if b else "-"


def table(rows: list[Row]) -> str:
  lines = ["| config | batch | train JAX (samples/s) | train PyTorch | ratio "
           "| score JAX (windows/s) | score PyTorch | ratio | whole test (s) |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
  for r in rows:
    torch_train = f"{r.train_torch:,.0f}" if r.train_torch else "-"
    torch_score = f"{r.score_torch:,.0f}" if r.score_torch else "-"
    lines.append(f"| {r.config} | {r.batch} | {r.train_jax:,.0f} | {torch_train} | "
                 f"{_ratio(r.train_jax, r.train_torch)} | {r.score_jax:,.0f} | {torch_score} | "
                 f"{_ratio(r.score_jax, r.score_torch)} | {r.whole_test_seconds:.1f} |")
  return "\n".join(lines)


SECTIONS = ("models", "phases", "profile", "fleet", "devices", "memory", "full_run")
# Written by bench/streaming.py (launch.detect's speed and memory), kept in the report.
STREAMING = ("streaming_throughput", "streaming_detect", "streaming_memory")
NOTES = "notes"  # docs/performance/notes.md: written by hand, appended to the report


def _section_file(out: str, section: str) -> pathlib.Path:
  return pathlib.Path(out).parent / "performance" / f"{section}.md"


def models_section(args) -> str:
  rows = []
  for name in args.configs:
    rows.append(measure(name, args.entity, args.steps, args.score_batches, args.torch))
    print(table(rows[-1:]).splitlines()[-1], flush=True)
  return (f"## Every model, JAX and PyTorch\n\nCommand: `python -m bench.throughput "
          f"--sections=models --entity={args.entity} --steps={args.steps} "
          f"--score_batches={args.score_batches}`.\n\n{table(rows)}\n")


def main(argv):
  del argv
  args = flags.FLAGS
  machine = runs.machine()
  print(f"machine: {machine}")
  unknown = set(args.sections) - set(SECTIONS)
  if unknown:
    raise app.UsageError(f"--sections: unknown {sorted(unknown)}; choose from {SECTIONS}.")
  measured = {
      "models": lambda: models_section(args),
      "fleet": lambda: scale.fleet_vs_sequential(args.fleet_config, _fleet_entities(args),
                                                 args.fleet_epochs),
      "devices": lambda: scale.devices(args.fleet_config, args.entity, args.steps),
      "phases": lambda: phases_section(args.configs, args.entity, args.steps),
      "profile": lambda: profile.profile_section(args.configs, args.entity, args.steps),
      "memory": lambda: scale.scoring_memory(args.configs, _longest_test(args.entity)),
      "full_run": lambda: scale.full_run("smd_mtadgat", args.entity),
  }
  for section in args.sections:
    text = f"Machine: {machine}.\n\n" + measured[section]()
    print(text, flush=True)
    if args.out:
      path = _section_file(args.out, section)
      path.parent.mkdir(parents=True, exist_ok=True)
      path.write_text(text)
  if args.out:
    kept = [_section_file(args.out, s) for s in (*SECTIONS, *STREAMING, NOTES)
            if _section_file(args.out, s).exists()]
    pathlib.Path(args.out).write_text(
        "# Throughput\n\nWritten by `python -m bench.throughput --out=docs/PERFORMANCE.md` "
        "from the sections in `docs/performance/`; `--sections=` reruns some and keeps the "
        "others.\n\n" + "\n".join(p.read_text() for p in kept))


def _fleet_entities(args) -> list[str]:
  config = config_names.load(args.fleet_config)
  config.data.entities = args.fleet_entities
  return data_lib.fleet_entities(config.data)


def _longest_test(entity: str) -> str:
  """The SMD machine with the longest test series, of `entity` ("all" or a comma list)."""
  config = config_names.load("smd_omni")
  config.data.entity = entity
  dataset = data_lib.load(config.data)
  return max(dataset.entities, key=lambda e: len(e.test)).name


if __name__ == "__main__":
  _define_flags()
  app.run(main)
