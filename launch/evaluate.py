"""Re-scores a saved run and checks that it reproduces the run's summary.

  python -m launch.evaluate --run=runs/smd/machine-1-6/lstm_ae/<run_id> [--step=N]
      [--override=model.scale_scores=True --override=threshold.pot_q=1e-4]

Without --step it scores the run's best (lowest validation loss) parameters,
as training did, and compares with the run's summary.json; with --step=N it
scores the parameters saved at step N. --override changes fields that only
affect scoring, thresholds and metrics (threshold.*, eval.* and the model file's
SCORING_FIELDS), so
a trained model can be re-scored another way without retraining. Fields added
to configs/common.py after the run was saved take their defaults. Results go
to <run>/evaluations/.
"""

import sys

from absl import flags
from absl import logging

from configs import common
from launch import errors
from tsad_jax import experiment
from tsad_jax import runs
from tsad_jax import summaries

_RUN = flags.DEFINE_string("run", None, "Run folder written by launch.train.")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step to score (default: best params).")
_OVERRIDE = flags.DEFINE_multi_string(
    "override", [], "field=value of a scoring-only field, e.g. model.gamma=0.5; repeatable.")
flags.mark_flags_as_required(["run"])


def _model_name(run: str) -> str:
  return runs.load_config(run).model.get("name", "")


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # keep orbax's per-save INFO lines off the terminal
  summary, out_dir = experiment.evaluate_run(_RUN.value, step=_STEP.value,
                                             overrides=tuple(_OVERRIDE.value),
                                             defaults=common.defaults(_model_name(_RUN.value)))
  print(f"Evaluation written to {out_dir}")
  print(summaries.headline(summary))
  if _STEP.value is None and not _OVERRIDE.value:
    differences = summaries.same_figures(summary, summaries.load_summary(_RUN.value))
    if differences:
      print("Does NOT reproduce the run's summary.json:\n  " + "\n  ".join(differences))
      sys.exit(1)
    print("Reproduces the run's summary.json.")


if __name__ == "__main__":
  errors.run(main)
