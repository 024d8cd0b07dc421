"""Runs (or resumes) a hyper-parameter sweep and points at its best run.

  python -m launch.sweep --config=configs/sweeps/demo_quick.py [--workdir=runs]
      [--config.top_k=3] [--config.grid.optim.learning_rate='(1e-3,3e-3)']

Writes <workdir>/sweeps/<name>/ (trial runs, results.csv, best.json); see
tsad_jax/sweep.py. Running the same command again skips finished trials and
resumes the others. --stop_after_trials=N returns after N trials, as a
preempted job would.
"""

from absl import flags
from absl import logging
from ml_collections import config_flags

from launch import errors
from tsad_jax import sweep

_CONFIG = config_flags.DEFINE_config_file("config", None, "Sweep spec file (configs/sweeps/).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", "runs", "The sweep goes to <workdir>/sweeps/<name>/.")
_STOP_AFTER = flags.DEFINE_integer("stop_after_trials", None,
                                   "Return after training this many trials (resume later).")
flags.mark_flags_as_required(["config"])


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # keep orbax's per-save INFO lines off the terminal
  result = sweep.run(_CONFIG.value, _WORKDIR.value, stop_after_trials=_STOP_AFTER.value,
                     log=lambda line: print(line, flush=True))
  print(sweep.report(result))
  if result.best is not None:
    print(f"Re-score it with: python -m launch.evaluate --run={result.best['run_dir']}")


if __name__ == "__main__":
  errors.run(main)
