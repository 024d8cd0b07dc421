"""Trains, scores and reports one run.

  python -m launch.train --config=configs/demo.py [--config.a.b=value] [--workdir=runs]

Writes <workdir>/<dataset>/<entity>/<model>/<run_id>/. Resume an interrupted
run with --config.run_id=<run_id> (same config).
"""

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from tsad_jax import experiment

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", "runs", "Folder the run folders go under.")
flags.mark_flags_as_required(["config"])


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # keep orbax's per-save INFO lines off the terminal
  run_dir = experiment.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  print(f"Run written to {run_dir}")
  print(experiment.headline(experiment.load_summary(run_dir)))


if __name__ == "__main__":
  app.run(main)
