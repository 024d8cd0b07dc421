"""Writes a config's series as a CSV file that launch.detect reads: a header of feature names, a
timestamp column, no labels.

  python -m launch.make_csv --config=configs/demo.py --output=today.csv [--part=test]
  python -m launch.make_csv --config=configs/smd_lstmae.py:machine-1-6 --output=m16.csv

Timestamps start at --start, one row per the data set's sampling interval (SMD:
a minute), or one a minute where the data set does not say.
"""

from absl import flags
from ml_collections import config_flags

from launch import errors
from tsad_jax.data import csv_files
from tsad_jax.data import load

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.")
_OUTPUT = flags.DEFINE_string("output", None, "The CSV file to write (never overwritten).")
_PART = flags.DEFINE_enum("part", "test", ["train", "test"], "Which series of the entity.")
_START = flags.DEFINE_string("start", "2026-01-01 00:00:00", "The first row's timestamp.")
flags.mark_flags_as_required(["config", "output"])


def main(argv):
  del argv
  dataset = load(_CONFIG.value.data)
  entity = dataset.entities[0]
  series = entity.test if _PART.value == "test" else entity.train
  csv_files.write_series(_OUTPUT.value, series, dataset.feature_names, start=_START.value,
                         points_per_day=dataset.points_per_day)
  print(f"{len(series):,} rows of {entity.name} ({_PART.value}, no labels) -> {_OUTPUT.value}")


if __name__ == "__main__":
  errors.run(main)
