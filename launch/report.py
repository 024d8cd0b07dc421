"""One page comparing runs: every run folder under --runs in one sortable table.

  python -m launch.report --runs=runs [--output=runs/report.html]

Each run (and each re-scoring in its evaluations/) is a row: threshold-free
metrics first, then the default alarm's label-free F1 beside the oracle F1,
the share of rows flagged, events found and false alarms per day.
"""

from absl import flags

from launch import errors
from tsad_jax import report_page

_RUNS = flags.DEFINE_string("runs", None, "Folder holding run folders (e.g. runs).")
_OUTPUT = flags.DEFINE_string("output", None, "The page (default <runs>/report.html).")
flags.mark_flags_as_required(["runs"])


def main(argv):
  del argv
  print(f"Report written to {report_page.comparison_page(_RUNS.value, _OUTPUT.value)}")


if __name__ == "__main__":
  errors.run(main)
