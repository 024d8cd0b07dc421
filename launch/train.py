"""Trains, scores and reports one run.

  python -m launch.train --config=configs/demo.py [--config.a.b=value] [--workdir=runs]

Writes <workdir>/<dataset>/<entity>/<model>/<run_id>/. Resume an interrupted
run with --config.run_id=<run_id> (same config); an id that names no run is an
error, unless --new_run says to start one under that name.

Each step splits its batch over every device. On several hosts (a multi-GPU
or TPU-pod job) run the same command in every process, adding

  --coordinator_address=<host of process 0>:<port> --num_processes=N --process_id=<i>

Every process loads the data; process 0 writes the run folder, which must be
on a filesystem all processes share (checkpoints are written by all).
"""

from absl import flags
from absl import logging
from ml_collections import config_flags

from interop import convert
from launch import errors
from tsad_jax import distributed
from tsad_jax import experiment
from tsad_jax import summaries

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", "runs", "Folder the run folders go under.")
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None, "Multi-process jobs: host:port of process 0 (unset: one process).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", 1, "Multi-process jobs: processes in all.")
_PROCESS_ID = flags.DEFINE_integer("process_id", 0, "Multi-process jobs: this process's index.")
_NEW_RUN = flags.DEFINE_bool("new_run", False, "With --config.run_id: start a new run under that "
                             "id if there is none (otherwise an unknown id is an error).")
flags.mark_flags_as_required(["config"])


def main(argv):
  del argv
  if _COORDINATOR.value is not None or _NUM_PROCESSES.value != 1:
    distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  logging.set_verbosity(logging.WARNING)  # keep orbax's per-save INFO lines off the terminal
  run_dir = experiment.train_and_evaluate(_CONFIG.value, _WORKDIR.value,
                                          params_from=convert.start_params,
                                          new_named=_NEW_RUN.value)
  if not distributed.is_main_process():
    return
  print(f"Run written to {run_dir}")
  print(summaries.headline(summaries.load_summary(run_dir)))


if __name__ == "__main__":
  errors.run(main)
