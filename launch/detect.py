"""Applies a trained run to a new CSV series: scores, alarms and alarm events.

  python -m launch.detect --run=runs/synthetic/synthetic/lstm_ae/<run_id> --input=today.csv \
      [--output=DIR] [--follow] [--missing=ffill]

The input's header names the run's feature columns (any order) and optionally a
timestamp column (`timestamp`, or --timestamp_column). The run's normaliser,
model, score statistics and threshold, all fitted on its training series, are
applied row by row. Writes DIR/scores.csv, DIR/alarms.csv, DIR/report.html and,
once the input has been read to its end, DIR/summary.json (default DIR:
<run>/detections/<input name>). With --follow the input is read as it grows
(a file, or - for standard input) and alarms are written as they end; a job
killed and started again with the same --output continues where it stopped.
"""

import pathlib

from absl import flags
from absl import logging

from configs import common
from launch import errors
from tsad_jax import deployment
from tsad_jax import detection
from tsad_jax import distributed
from tsad_jax import runs
from tsad_jax.data import rows

_RUN = flags.DEFINE_string("run", None, "Run folder written by launch.train.")
_INPUT = flags.DEFINE_string("input", None, "CSV file to score, or - for standard input.")
_OUTPUT = flags.DEFINE_string("output", None,
                              "Folder for the results (default <run>/detections/<input name>).")
_ENTITY = flags.DEFINE_string("entity", "", "Which of the run's entities the input comes from "
                              "(needed only for a run of several).")
_MISSING = flags.DEFINE_enum("missing", None, list(rows.MISSING),
                             "Gaps in the input (default: the run's data.missing, else error).")
_TIMESTAMP = flags.DEFINE_string("timestamp_column", None,
                                 "The input's timestamp column (default: `timestamp` if present; "
                                 "'' for none).")
_FOLLOW = flags.DEFINE_bool("follow", False, "Keep reading as the input grows.")
_IDLE = flags.DEFINE_float("idle_seconds", None,
                           "With --follow: stop after this many seconds without a new row.")
_BATCH = flags.DEFINE_integer("micro_batch", 64, "Windows scored per call of the model.")
_CHECKPOINT = flags.DEFINE_integer("checkpoint_rows", 10_000, "Rows between saved states.")
_PROGRESS = flags.DEFINE_bool("progress", True, "Show a progress bar.")
_REPORT = flags.DEFINE_bool("report", True, "Write DIR/report.html when the job stops.")
flags.mark_flags_as_required(["run", "input"])


def main(argv):
  del argv
  distributed.use_cpu_cores()
  logging.set_verbosity(logging.WARNING)
  if _BATCH.value < 1 or _CHECKPOINT.value < 1:
    raise ValueError("--micro_batch and --checkpoint_rows must be positive integers.")
  config = runs.load_config(_RUN.value)
  dep = deployment.load(_RUN.value, entity=_ENTITY.value, batch=_BATCH.value,
                        defaults=common.defaults(config.model.get("name", "")))
  output = _OUTPUT.value
  if output is None:
    if _INPUT.value == detection.STDIN:
      raise ValueError("Reading standard input, name the results' folder with --output.")
    output = pathlib.Path(_RUN.value) / "detections" / pathlib.Path(_INPUT.value).stem
  options = detection.Options(
      missing=_MISSING.value or dep.config.data.get("missing", "error"),
      timestamp_column=_TIMESTAMP.value, checkpoint_rows=_CHECKPOINT.value,
      follow=_FOLLOW.value, idle_seconds=_IDLE.value, batch=_BATCH.value,
      progress=_PROGRESS.value, report=_REPORT.value)
  summary = detection.run(dep, _INPUT.value, pathlib.Path(output), options)
  seconds = summary["seconds"]
  print(f"{summary['rows']:,} rows, {summary['alarm_events']} alarm events, {seconds:.1f} s "
        f"({summary['rows'] / max(seconds, 1e-9):,.0f} rows/s) -> {output}")


if __name__ == "__main__":
  errors.run(main)
