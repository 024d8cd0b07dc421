"""Which residual MSCRED's score reads: each scale, and where a held score sits.

  python -m bench.mscred_scores [--workdir=runs/bench]

Reads the finished `smd_mscred` run of each SMD machine that `python -m
bench.accuracy` left under --workdir (the one it reports: `accuracy.finished_run`;
none is trained here) and scores each test series
again with the run's parameters, every `config.model.score_stride`-th window as
the run did, keeping the squared residual of every scale's matrix rows apart.
It prints the VUS-PR of the per-feature scores built from:
  scale: all scales summed (the library's score), or one scale alone (the
    reference code counts broken entries on the smallest scale only);
  alignment: "forward", the library's causal hold (a scored window's score
    holds over the points after its last one until the next scored window),
    or "backward" (the score of the window ending at or after a point: the
    points its finest matrix sums over). Backward needs the next score, so it
    is not causal.
Each then goes through the run's per-feature scaling and the sum over features.
"""

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

from bench import accuracy
from configs import common
from tsad_jax import feature_scaling
from tsad_jax import metrics
from tsad_jax import run_setup
from tsad_jax import runs
from tsad_jax import scoring
from tsad_jax import train
from tsad_jax.data import windows
from tsad_jax.models import mscred

JOB = "smd_mscred"
ALIGNMENTS = ("forward", "backward")


def residual_rows(setup: run_setup.Setup, params) -> tuple[np.ndarray, np.ndarray]:
  """(ends (K,), rows (K, D, n_scales)): each scored test window's last point and row residuals."""
  config, model = setup.config, setup.model
  window = config.data.window
  series = jnp.asarray(scoring.pad_to_power_of_two(setup.prepared.test))
  starts = windows.window_starts(setup.prepared.test_lengths, window=window,
                                 stride=mscred.score_stride(config.model))

  @jax.jit
  def rows(params, series, batch):
    cut = windows.take_windows(series, batch, window)
    return mscred.squared_residual(model, params, cut).sum(axis=2)

  parts = [np.asarray(rows(params, series, batch))[:size]
           for size, batch in scoring.padded_batches(starts, config.eval.batch_size)]
  return starts + window - 1, np.concatenate(parts)


def held(ends: np.ndarray, values: np.ndarray, length: int, alignment: str) -> np.ndarray:
  """(K, ...) window scores -> (length, ...) point scores."""
  points = np.arange(length)
  if alignment == "forward":
    index = np.searchsorted(ends, points, side="right") - 1
  else:
    index = np.searchsorted(ends, points, side="left")
  return values[np.clip(index, 0, len(ends) - 1)]


def variant_scores(setup: run_setup.Setup, params) -> dict[tuple[str, str], np.ndarray]:
  """{(scale, alignment): (T,) score}, for one SMD machine (a single test segment)."""
  ends, rows = residual_rows(setup, params)
  scales = mscred.parse_ints(setup.config.model.scales)
  by_scale = {"all": rows.sum(axis=-1)} | {str(s): rows[..., i] for i, s in enumerate(scales)}
  length = len(setup.prepared.test)
  out = {}
  for scale, per_window in by_scale.items():
    for alignment in ALIGNMENTS:
      per_feature = held(ends, per_window, length, alignment)
      scaled, _ = feature_scaling.apply(setup.config.eval.feature_scaling, per_feature,
                                        per_feature, floor=setup.config.eval.scaling_floor)
      out[(scale, alignment)] = scaled.sum(axis=1)
  return out


def machine_figures(entity: str) -> dict[tuple[str, str], float]:
  run_dir = accuracy.finished_run(accuracy.job_config(JOB, entity))
  if not (run_dir / "summary.json").exists():
    raise FileNotFoundError(f"No finished {JOB} run of {entity} under {run_dir.parent}: train "
                            f"one with `python -m bench.accuracy --jobs={JOB} --workdir=...`.")
  print(f"[{entity}] {run_dir}", flush=True)
  setup = run_setup.build(runs.add_missing_fields(runs.load_config(run_dir),
                                                   common.defaults("mscred")))
  params = train.load_params(run_dir)
  labels = setup.prepared.dataset.entities[0].labels
  window = setup.config.eval.vus_window
  return {key: metrics.vus(labels, score, sliding_window=window)[0]
          for key, score in variant_scores(setup, params).items()}


def main(argv):
  del argv
  machines = accuracy.entities("smd")
  figures = {entity: machine_figures(entity) for entity in machines}
  keys = list(next(iter(figures.values())))
  print(f"Machine: {runs.machine()}. VUS-PR of MSCRED's test scores ({JOB} runs under "
        f"{flags.FLAGS.workdir}).\n")
  print("| scale | alignment | " + " | ".join(machines) + " | mean |")
  print("| --- | --- | " + " | ".join("---" for _ in machines) + " | --- |")
  for scale, alignment in keys:
    values = [figures[entity][(scale, alignment)] for entity in machines]
    print(f"| {scale} | {alignment} | " + " | ".join(f"{v:.3f}" for v in values)
          + f" | {np.mean(values):.3f} |")


if __name__ == "__main__":
  app.run(main)
