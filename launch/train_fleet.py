"""Trains one model per entity, all in one compiled program, and scores each.

  python -m launch.train_fleet --config=configs/smd_omni.py --config.data.entities=all

`data.entities` is "all" (every SMD machine, or every channel of SMAP/MSL) or
a comma list. Each entity gets the ordinary run folder `launch.train` would
write for it alone with the same config and seed,
<workdir>/<dataset>/<entity>/<model>/<run_id>/, and the same parameters up
to float rounding; `launch.evaluate --run=<folder>` works on it. All share one
run id: resume an interrupted fleet with --config.run_id=<run_id>. A table of
every member goes to <workdir>/<dataset>/fleets/<model>-<run_id>.csv.
"""

import pathlib

from absl import flags
from absl import logging
from ml_collections import config_flags

from interop import convert
from launch import errors
from tsad_jax import fleet

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", "runs", "Folder the run folders go under.")
_NEW_RUN = flags.DEFINE_bool("new_run", False, "With --config.run_id: start a new fleet under that "
                             "id if there is none (otherwise an unknown id is an error).")
flags.mark_flags_as_required(["config"])


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  config = _CONFIG.value
  results = fleet.train_fleet(config, _WORKDIR.value, params_from=convert.start_params,
                              new_named=_NEW_RUN.value)
  run_id = results[0].run_dir.name
  table = (pathlib.Path(_WORKDIR.value) / config.data.dataset / "fleets"
           / f"{config.model.name}-{run_id}.csv")
  rows = fleet.write_table(results, table)
  for row in rows:
    figures = "".join(f"  {k} {row[k]:.4f}" for k in ("VUS-PR", "AUC-PR") if k in row)
    print(f"{row['entity']:14s} {row['status']}{figures}  {row['run_dir']}")
  print(f"Fleet table written to {table}")
  failed = [row["entity"] for row in rows if row["status"] not in ("trained", "already trained")]
  if failed:
    raise SystemExit(f"Not trained to the end: {', '.join(failed)} (see the lines above).")


if __name__ == "__main__":
  errors.run(main)
