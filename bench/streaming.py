"""Streaming detection speed and memory (launch.detect --follow).

  python -m bench.streaming [--sections=throughput,detect,memory] [--configs=smd_lstmae,...]
      [--entity=machine-1-6] [--rows=4096] [--memory_rows=10000000] [--out=docs/performance]

- throughput: per model (its default config, freshly initialised parameters:
  scoring costs the same trained or not), the rows of the entity's test series
  go through `stream.update` as they would arrive: in micro-batches of 64 rows
  (rows/s), and one row at a time (the latency from a row's arrival to its
  score and alarm: median and 99th percentile). Compilation is not timed. The
  deployment is calibrated on the first 3,000 training rows only (calibration
  happens once per run and is not what is timed).
- detect: the command a user runs, `python -m launch.detect --follow
  --input=-`, fed the entity's whole test series on standard input, `--repeats`
  times: the job's own rows/s (summary.json: rows over seconds, the first
  call's compilation included, JAX's start-up and the run's loading not). The
  run is `--run`, or the entity's smd_lstmae run with its default config,
  trained first: an undertrained model raises many more alarms, and each new
  peak above DSPOT's initial threshold refits its tail (a one-epoch run's 730
  alarm events on machine-1-6 cost about a third of the speed).
- memory: `python -m launch.detect --follow --input=-` fed `--memory_rows` rows
  of a synthetic 8-feature stream on standard input (LSTM-AE of configs/demo.py
  on its own synthetic data); the detect process's resident memory is sampled
  as the rows go by. Flat means bounded: only the last window and the
  threshold's state are kept.
With --out each section goes to <out>/streaming_<section>.md, machine named.
"""

import json
import pathlib
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags
import jax
import numpy as np

from tsad_jax import config_names
from tsad_jax import deployment
from tsad_jax import distributed
from tsad_jax import experiment
from tsad_jax import models
from tsad_jax import runs
from tsad_jax import stream
from tsad_jax import train
import tsad_jax.data as data_lib
from tsad_jax.data import csv_files

CONFIGS = ("smd_lstmae", "smd_lstmae_pred", "smd_lstmae_clf", "smd_omni", "smd_transformer",
           "smd_mtadgat", "smd_mscred", "smd_sdmae")
MICRO_BATCH = 64
ROOT = pathlib.Path(__file__).resolve().parent.parent
CALIBRATION_ROWS = 3000


def _define_flags() -> None:
  flags.DEFINE_list("sections", ["throughput", "detect", "memory"], "Sections to run.")
  flags.DEFINE_list("configs", list(CONFIGS), "Config files in configs/ (throughput).")
  flags.DEFINE_string("entity", "machine-1-6", "SMD machine whose test rows are streamed.")
  flags.DEFINE_integer("rows", 4096, "Rows streamed per model (throughput).")
  flags.DEFINE_integer("latency_rows", 300, "Rows streamed one at a time per model.")
  flags.DEFINE_integer("memory_rows", 10_000_000, "Rows of the memory run.")
  flags.DEFINE_integer("repeats", 5, "Detect jobs timed (detect).")
  flags.DEFINE_string("run", None, "Throughput of this trained run folder's model instead "
                      "(calibrated on its whole training series, as launch.detect does).")
  flags.DEFINE_string("out", None, "Folder for the sections (e.g. docs/performance).")


def fresh_deployment(name: str, entity: str) -> tuple[stream.Deployment, np.ndarray]:
  """A deployment of `configs/<name>.py` with seed-0 parameters, and the test rows to stream."""
  config = config_names.load(f"{name}:{entity}")
  dataset = data_lib.load(config.data)
  chosen = dataset.entities[0]
  model_lib = models.get(config.model.name)
  model = model_lib.build(config.model, num_features=dataset.num_features,
                          window=config.data.window)
  params = train.init_params(model, key=jax.random.PRNGKey(0), window=config.data.window,
                             num_features=dataset.num_features)
  short = chosen.__class__(chosen.name, chosen.train[:CALIBRATION_ROWS], chosen.test,
                           chosen.labels)
  dep = deployment.build(config, tuple(dataset.feature_names), short, model, params,
                         batch=MICRO_BATCH)
  return dep, chosen.test


def trained_deployment(run_dir: str) -> tuple[stream.Deployment, np.ndarray]:
  """A trained run's deployment (launch.detect's) and its entity's test rows."""
  dep = deployment.load(run_dir, batch=MICRO_BATCH)
  return dep, data_lib.load(dep.config.data).entities[0].test


def throughput(name: str, entity: str, rows: int, latency_rows: int, *,
               run_dir: str | None = None) -> dict:
  dep, test = trained_deployment(run_dir) if run_dir else fresh_deployment(name, entity)
  warm = dep.window + 2 * MICRO_BATCH
  state, _ = stream.update(dep, stream.start(dep), test[:warm], batch=MICRO_BATCH)
  state, _ = stream.update(dep, state, test[warm:warm + 1], batch=MICRO_BATCH)  # compiled
  chunks = np.array_split(test[warm:warm + rows], max(rows // MICRO_BATCH, 1))
  started = time.perf_counter()
  for chunk in chunks:
    state, _ = stream.update(dep, state, chunk, batch=MICRO_BATCH)
  per_second = sum(len(c) for c in chunks) / (time.perf_counter() - started)
  latencies = []
  for row in test[warm + rows:warm + rows + latency_rows]:
    started = time.perf_counter()
    state, _ = stream.update(dep, state, row[None], batch=MICRO_BATCH)
    latencies.append(time.perf_counter() - started)
  return {"config": name, "rows/s": per_second,
          "latency p50 (ms)": 1e3 * float(np.median(latencies)),
          "latency p99 (ms)": 1e3 * float(np.percentile(latencies, 99))}


def _trained_run(name: str, workdir: pathlib.Path, *, max_epochs: int | None = None
                 ) -> pathlib.Path:
  """A run of `configs/<name>` (its own epochs unless `max_epochs`), without plots."""
  config = config_names.load(name)
  if max_epochs is not None:
    config.train.max_epochs = max_epochs
  config.eval.plots = False
  return experiment.train_and_evaluate(config, workdir)


def detect_jobs(entity: str, repeats: int, run_dir: str | None) -> list[dict]:
  """The rows/s of `repeats` launch.detect --follow jobs over the entity's test series."""
  with tempfile.TemporaryDirectory() as scratch:
    scratch = pathlib.Path(scratch)
    if run_dir is None:
      run_dir = _trained_run(f"smd_lstmae:{entity}", scratch / "runs")
    dataset = data_lib.load(runs.load_config(run_dir).data)
    rows = scratch / "input.csv"
    csv_files.write_series(rows, dataset.entities[0].test, dataset.feature_names,
                           start="2026-01-01 00:00:00", points_per_day=dataset.points_per_day)
    jobs = []
    for repeat in range(repeats):
      out = scratch / f"detect-{repeat}"
      with open(rows, "rb") as stdin:
        subprocess.run([sys.executable, "-m", "launch.detect", f"--run={run_dir}", "--input=-",
                        "--follow", f"--output={out}", "--noprogress", "--noreport"],
                       stdin=stdin, cwd=ROOT, check=True)
      summary = json.loads((out / "summary.json").read_text())
      jobs.append({"job": repeat + 1, "rows": summary["rows"],
                   "seconds": summary["seconds"], "rows/s": summary["rows"] / summary["seconds"]})
    return jobs


def _rss_mb(pid: int) -> float:
  with open(f"/proc/{pid}/status") as f:
    kib = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
  return kib / 1024


def memory(rows: int) -> list[dict]:
  """Resident memory of a following detect process over `rows` streamed rows."""
  with tempfile.TemporaryDirectory() as scratch:
    scratch = pathlib.Path(scratch)
    run_dir = _trained_run("demo", scratch / "runs", max_epochs=1)
    names = data_lib.load(runs.load_config(run_dir).data).feature_names
    process = subprocess.Popen(
        [sys.executable, "-m", "launch.detect", f"--run={run_dir}", "--input=-", "--follow",
         f"--output={scratch / 'out'}", "--noprogress", "--noreport",
         "--checkpoint_rows=100000"], stdin=subprocess.PIPE, cwd=ROOT)
    rng = np.random.default_rng(0)
    process.stdin.write((",".join(names) + "\n").encode())
    samples, sent, block, started = [], 0, 20_000, time.perf_counter()
    next_sample = 0
    while sent < rows:
      t = np.arange(sent, sent + min(block, rows - sent))[:, None]
      values = 50 + 10 * np.sin(t / 60 + np.arange(len(names))) + rng.standard_normal(
          (len(t), len(names)))
      process.stdin.write("".join(",".join(f"{v:.3f}" for v in row) + "\n"
                                  for row in values).encode())
      sent += len(t)
      if sent >= next_sample:
        samples.append({"rows sent": sent, "RSS (MB)": _rss_mb(process.pid),
                        "seconds": time.perf_counter() - started})
        next_sample += max(rows // 20, block)
    process.stdin.close()
    process.wait()
    return samples


def _markdown(rows: list[dict]) -> str:
  keys = list(rows[0])
  lines = ["| " + " | ".join(keys) + " |", "|" + " --- |" * len(keys)]
  for row in rows:
    lines.append("| " + " | ".join(f"{row[k]:,.1f}" if isinstance(row[k], float) else
                                   f"{row[k]:,}" if isinstance(row[k], int) else str(row[k])
                                   for k in keys) + " |")
  return "\n".join(lines)


def main(argv):
  del argv
  distributed.use_cpu_cores()  # as launch.detect does
  f = flags.FLAGS
  sections = {}
  if "throughput" in f.sections and f.run:
    row = throughput("", "", f.rows, f.latency_rows, run_dir=f.run)
    row["config"] = f"trained run {pathlib.Path(f.run).parent.name}"
    print(_markdown([row]))
  elif "throughput" in f.sections:
    table = [throughput(name, f.entity, f.rows, f.latency_rows) for name in f.configs]
    sections["throughput"] = (
        f"Streaming throughput and latency, {f.entity} test rows, micro-batches of "
        f"{MICRO_BATCH} rows (rows/s) and single rows (latency), freshly initialised "
        f"parameters.\n\nCommand: `python -m bench.streaming --sections=throughput`.\n\n"
        + _markdown(table))
  if "detect" in f.sections:
    table = detect_jobs(f.entity, f.repeats, f.run)
    speeds = sorted(row["rows/s"] for row in table)
    sections["detect"] = (
        f"`launch.detect --follow --input=-` fed {f.entity}'s test series "
        f"({table[0]['rows']:,} rows) on standard input, micro-batches of {MICRO_BATCH} "
        f"windows, {'the run ' + f.run if f.run else 'its smd_lstmae run (default config)'}: the "
        f"job's rows/s, median {speeds[len(speeds) // 2]:,.0f}, lowest {speeds[0]:,.0f}.\n\n"
        f"Command: `python -m bench.streaming --sections=detect --entity={f.entity} "
        f"--repeats={f.repeats}`.\n\n" + _markdown(table))
  if "memory" in f.sections:
    table = memory(f.memory_rows)
    sections["memory"] = (
        f"Resident memory of `launch.detect --follow --input=-` over {f.memory_rows:,} streamed "
        f"rows (LSTM-AE, configs/demo.py, 8 features).\n\nCommand: `python -m bench.streaming "
        f"--sections=memory --memory_rows={f.memory_rows}`.\n\n" + _markdown(table))
  for name, text in sections.items():
    report = f"## Streaming {name}\n\nMachine: {runs.machine()}.\n\n{text}\n"
    print(report)
    if f.out:
      pathlib.Path(f.out, f"streaming_{name}.md").write_text(report)


if __name__ == "__main__":
  _define_flags()
  app.run(main)
