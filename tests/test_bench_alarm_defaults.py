"""The selection's alarm score: point F1, discounted by the share of alarm events that are
not mostly inside an anomaly."""

import numpy as np
import pytest

from bench import alarm_defaults


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
