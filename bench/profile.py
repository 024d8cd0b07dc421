"""Where a JAX training step spends its time: XLA's own per-op trace, summarised.

  python -m bench.throughput --sections=profile [--configs=smd_lstmae,...] [--steps=5]

Each config's jitted train step (the library's, on real training batches) runs
under `jax.profiler.trace` after warm-up. The trace (open it in Perfetto or
TensorBoard's profile plugin) is kept under `runs/profile/<config>/`. From its
Perfetto export, every event of an XLA op (events carrying `hlo_op`) gives its
self time: its duration less that of the ops nested in it, such as a while
loop's body. Self times are summed over the CPU threads, so "busy" can exceed
the wall time of a step when XLA runs ops on several cores at once.
"""

import collections
import gzip
import json
import pathlib
import re
import time

import jax
import jax.numpy as jnp

from bench import steps as steps_lib
from tsad_jax import config_names
from tsad_jax import run_setup

# Op kinds, read from the op an HLO op name ends with: XLA names a fusion after the ops
# it fuses, usually its root last ("broadcast_add_fusion" adds), and a wrapped op after
# that op. XNNPACK (ynn_, xnn_) and oneDNN thunks are matmuls or convolutions. The first
# match wins.
LIBRARY_MATMUL = re.compile(r"^(ynn_|xnn_|onednn)")
KINDS = (
    ("matmul/conv", re.compile(r"^(dot|convolution)")),
    ("loop control", re.compile(r"^(while|conditional|call)$")),
    ("data movement", re.compile(
        r"^(copy|transpose|dynamic-update-slice|dynamic-slice|slice|concatenate|pad|broadcast|"
        r"reverse|gather|scatter|bitcast|reshape)$")),
    ("elementwise/reduce", re.compile(
        r"^(fusion|add|subtract|multiply|divide|tanh|exponential|log|logistic|maximum|minimum|"
        r"reduce|select|compare|negate|sqrt|rsqrt|power|convert|and|or|not|abs|sign|erf|clamp|"
        r"exponential-minus-one|log-plus-one)$")),
)
OTHER = "other"


def op_name(name: str) -> str:
  """"ynn_fusion.12" -> "ynn_fusion": one name for every instance of an op."""
  return re.sub(r"\.\d+$", "", name)


def root_op(name: str) -> str:
  """The op a (fused or wrapped) op name ends with: "multiply_add_fusion" -> "add"."""
  name = op_name(name)
  if name.startswith("wrapped_"):
    return name[len("wrapped_"):]
  if name.endswith("_fusion"):
    return name[:-len("_fusion")].split("_")[-1]
  return name


def kind_of(name: str) -> str:
  if LIBRARY_MATMUL.search(name):
    return "matmul/conv"
  root = root_op(name)
  for kind, pattern in KINDS:
    if pattern.search(root):
      return kind
  return OTHER


def op_self_seconds(trace_file: pathlib.Path) -> dict[str, float]:
  """Seconds of self time per op name, over every thread of a Perfetto trace (.json.gz)."""
  with gzip.open(trace_file, "rt") as f:
    events = json.load(f)["traceEvents"]
  by_thread = collections.defaultdict(list)
  for event in events:
    if event.get("ph") == "X" and "hlo_op" in event.get("args", {}):
      by_thread[(event["pid"], event["tid"])].append(event)
  seconds = collections.Counter()
  for thread_events in by_thread.values():
    thread_events.sort(key=lambda e: (e["ts"], -e["dur"]))
    open_ops = []  # [end, name, self time so far]: the ops the current one is nested in
    for event in thread_events:
      while open_ops and open_ops[-1][0] <= event["ts"]:
        _, name, own = open_ops.pop()
        seconds[name] += own
      if open_ops:
        open_ops[-1][2] -= event["dur"]
      open_ops.append([event["ts"] + event["dur"], op_name(event["name"]), event["dur"]])
    for _, name, own in open_ops:
      seconds[name] += own
  return {name: us * 1e-6 for name, us in seconds.items()}


def _latest_trace(trace_dir: pathlib.Path) -> pathlib.Path:
  found = sorted(trace_dir.glob("plugins/profile/*/perfetto_trace.json.gz"))
  if not found:
    raise FileNotFoundError(f"No Perfetto trace was written under {trace_dir}.")
  return found[-1]


def profile_training(name: str, entity: str, steps: int, trace_dir: pathlib.Path) -> dict:
  """Per-step wall and busy milliseconds of `configs/<name>.py`'s train step, by op kind."""
  config = config_names.load(name)
  config.data.entity = entity
  setup = run_setup.build(config)
  state, step = steps_lib.state_and_step(setup)
  series, key = jnp.asarray(setup.prepared.train), jax.random.PRNGKey(1)
  batches = [jnp.asarray(b) for b in steps_lib.batches(setup, steps + 2,
                                                        config.train.batch_size)]
  for b in batches[:2]:  # compilation and warm-up
    state, loss = step(state, series, b, key)
  loss.block_until_ready()
  trace_dir.mkdir(parents=True, exist_ok=True)
  with jax.profiler.trace(str(trace_dir), create_perfetto_trace=True):
    started = time.perf_counter()
    for b in batches[2:]:
      state, loss = step(state, series, b, key)
    loss.block_until_ready()
    wall = time.perf_counter() - started
  by_op = op_self_seconds(_latest_trace(trace_dir))
  by_kind = collections.Counter()
  for op, seconds in by_op.items():
    by_kind[kind_of(op)] += seconds
  return {"step_ms": 1000 * wall / steps, "busy_ms": 1000 * sum(by_op.values()) / steps,
          "kinds": {k: 1000 * v / steps for k, v in by_kind.items()},
          "top_ops": sorted(by_op.items(), key=lambda item: -item[1])[:3],
          "steps": steps}


def profile_section(names: list[str], entity: str, steps: int,
                    trace_root: pathlib.Path = pathlib.Path("runs/profile")) -> str:
  kinds = [k for k, _ in KINDS] + [OTHER]
  lines = ["## Where JAX's training step goes, from XLA's trace\n",
           f"`--sections=profile --steps={steps}` on {entity}: milliseconds per training step "
           "(wall), XLA op self time per step summed over the CPU threads (busy), its split by "
           "op kind, and the three ops with the most self time (share of busy). Traces: "
           f"`{trace_root}/<config>/`, for Perfetto or TensorBoard. See bench/profile.py.\n",
           "| config | wall ms | busy ms | " + " | ".join(kinds) + " | top ops |",
           "| --- | --- | --- | " + " | ".join("---" for _ in kinds) + " | --- |"]
  for name in names:
    got = profile_training(name, entity, steps, trace_root / name)
    busy = got["busy_ms"]
    shares = [f"{100 * got['kinds'].get(k, 0.0) / busy:.0f}%" for k in kinds]
    top = ", ".join(f"`{op}` {100 * 1000 * s / got['steps'] / busy:.0f}%"
                    for op, s in got["top_ops"])
    lines.append(f"| {name} | {got['step_ms']:.1f} | {busy:.1f} | " + " | ".join(shares)
                 + f" | {top} |")
    print(lines[-1], flush=True)
  return "\n".join(lines) + "\n"
