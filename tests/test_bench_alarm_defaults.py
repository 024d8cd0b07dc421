"""The selection's alarm score: point F1, discounted by the share of alarm events that are
not mostly inside an anomaly."""

import numpy as np
import pytest

from bench import alarm_defaults
from configs import common
from tsad_jax.data import synthetic


def test_alarm_score_by_hand():
  labels = np.array([0, 0, 1, 1, 0, 0, 0, 0])
  preds = np.array([0, 1, 1, 1, 0, 0, 1, 0])  # precision 2/4, recall 1: F1 2/3
  # two alarm events, the first two thirds inside the anomaly: half of them true
  assert alarm_defaults.alarm_score(labels, preds) == pytest.approx(2 / 3 * 1 / 2)


def test_split_and_flooding_alarms_score_lower_than_one_alarm_over_the_anomaly():
  labels = np.array([0, 1, 1, 1, 1, 0, 0, 0, 0, 0])
  whole = np.array([0, 1, 1, 1, 1, 0, 0, 0, 0, 0])
  with_false_blips = np.array([0, 1, 1, 1, 1, 0, 1, 0, 1, 0])
  assert alarm_defaults.alarm_score(labels, whole) == pytest.approx(1.0)
  assert alarm_defaults.alarm_score(labels, with_false_blips) == pytest.approx(
      (2 * 4 / 6 / (4 / 6 + 1)) * 1 / 3)
  assert alarm_defaults.alarm_score(labels, np.zeros(10, int)) == 0.0
  assert alarm_defaults.alarm_score(labels, np.ones(10, int)) == 0.0  # one event, mostly normal


def test_the_selection_ranks_candidates_on_injected_halves_without_test_data():
  """A zscore baseline on a synthetic training series: both halves of its held-out tail get
  injected copies, the first with a lasting shift; candidates are scored on them and reported
  with each group's own best."""
  config = common.get_config()
  config.data.window = 10
  config.data.val_fraction = 0.3
  entity = synthetic.generate(seed=1, train_length=4_000).entity
  folds = alarm_defaults.baseline_folds("zscore", entity, config, copies=2)
  (start, middle), (middle_again, end) = folds.halves
  assert middle == middle_again and end == len(entity.train) and start < middle
  for copies in folds.injected:
    (first, first_labels), (second, second_labels) = copies
    assert first.shape[0] == second.shape[0] and first_labels.any() and second_labels.any()
  methods = [("pot", {"pot_q": 1e-2, "pot_level": 0.95}),
             ("dspot", {"pot_q": 1e-2, "pot_level": 0.95, "dspot_depth": 20,
                        "dspot_relearn": 0}),
             ("dspot", {"pot_q": 1e-2, "pot_level": 0.95, "dspot_depth": 20,
                        "dspot_relearn": 10})]
  scores = alarm_defaults.injected_scores(folds, config, methods)
  assert len(scores) == 3 and all(0.0 <= s <= 1.0 for s in scores)
  assert max(scores) > 0.0
  candidates = [alarm_defaults.Candidate("none", (), 0.01, "sum", m, tuple(sorted(o.items())))
                for m, o in methods]
  results = {c.name(): {folds.name: s, "pca/x": 0.5} for c, s in zip(candidates, scores,
                                                                      strict=True)}
  chosen = candidates[int(np.argmax(scores))]
  spreads = {folds.name: {kind: dict.fromkeys(alarm_defaults.SIZES, 0.25)
                          for kind in ("stretches", "resampled")}}
  page = alarm_defaults.report(results, chosen, spreads, [folds], "here")
  assert "## Each model's and baseline's own best candidate" in page
  assert "| zscore |" in page and "| pca |" in page and f"| {folds.name} | 0.25 |" in page


def test_injected_copies_shift_for_good_only_in_the_first():
  series = synthetic.generate(seed=2).entity.train
  copies = alarm_defaults._injected_copies(series, (0, 1_000), series.std(axis=0),
                                           np.random.default_rng(0), copies=3)
  assert [c.kinds[-1] == "lasting_shift" for c in copies] == [True, False, False]
