"""The embedded synthetic data set: deterministic, every anomaly type present and labelled."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from configs.common import data_config
from tsad_jax import data
from tsad_jax.data import synthetic
from tsad_jax.data.types import DataError


def _zscore_scores(entity):
  mean, std = entity.train.mean(axis=0), entity.train.std(axis=0)
  return np.abs((entity.test - mean) / std).max(axis=1)


def test_same_seed_gives_identical_arrays():
  a, b = synthetic.generate(seed=3), synthetic.generate(seed=3)
  np.testing.assert_array_equal(a.entity.train, b.entity.train)
  np.testing.assert_array_equal(a.entity.test, b.entity.test)
  np.testing.assert_array_equal(a.entity.labels, b.entity.labels)
  assert a.entity.segments == b.entity.segments
  assert a.anomaly_types == b.anomaly_types


def test_different_seed_gives_different_arrays():
  a, b = synthetic.generate(seed=0), synthetic.generate(seed=1)
  assert not np.allclose(a.entity.train, b.entity.train)
  assert a.entity.segments != b.entity.segments


def test_defaults_shapes_and_every_type_present():
  generated = synthetic.from_config(data_config().synthetic)
  entity = generated.entity
  assert entity.train.shape == (6000, 8) and entity.test.shape == (6000, 8)
  assert entity.train.dtype == np.float32 and entity.labels.dtype == np.uint8
  assert len(entity.segments) == 12
  assert set(generated.anomaly_types) == set(synthetic.ANOMALY_TYPES)
  assert np.isfinite(entity.train).all() and np.isfinite(entity.test).all()


def test_labels_are_exactly_the_segments():
  entity = synthetic.generate(seed=5).entity
  expected = np.zeros(len(entity.test), dtype=np.uint8)
  previous_end = -1
  for segment in sorted(entity.segments):
    assert segment.start > previous_end, "segments must not overlap"
    assert 0 < len(segment.dims) <= 8 and max(segment.dims) < 8
    expected[segment.start:segment.end + 1] = 1
    previous_end = segment.end
  np.testing.assert_array_equal(entity.labels, expected)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_anomalies_change_the_series_only_where_labelled(seed):
  clean = synthetic.generate(seed=seed, anomaly_scale=0.0).entity
  hit = synthetic.generate(seed=seed).entity
  np.testing.assert_array_equal(clean.train, hit.train)
  assert clean.segments == hit.segments
  changed = ~np.isclose(hit.test, clean.test)
  inside = np.zeros_like(changed)
  for segment in hit.segments:
    inside[segment.start:segment.end + 1, list(segment.dims)] = True
    assert changed[segment.start:segment.end + 1, list(segment.dims)].any()
  assert not (changed & ~inside).any()


def test_each_type_alone_is_injected():
  for kind in synthetic.ANOMALY_TYPES:
    generated = synthetic.generate(seed=0, num_anomalies=3, anomaly_types=[kind])
    assert generated.anomaly_types == (kind,) * 3
    assert generated.entity.labels.sum() > 0


def test_a_lasting_shift_moves_its_features_for_good_and_is_labelled_once():
  series = synthetic.generate(seed=3).entity.train
  spread = series.std(axis=0)
  passing = synthetic.inject(series, rng=np.random.default_rng(0), num_anomalies=4, spread=spread)
  lasting = synthetic.inject(series, rng=np.random.default_rng(0), num_anomalies=4, spread=spread,
                             lasting_shift=True)
  assert lasting.segments[:-1] == passing.segments
  assert lasting.kinds == passing.kinds + ("lasting_shift",)
  shift = lasting.segments[-1]
  dims = list(shift.dims)
  assert len(series) // 10 <= shift.start < len(series) // 2
  moved = lasting.series[:, dims] - passing.series[:, dims]
  assert np.allclose(moved[:shift.start], 0.0)
  np.testing.assert_allclose(moved[shift.start:] - moved[-1], 0.0, atol=1e-9)
  assert np.all(np.abs(moved[-1]) >= 1.5 * spread[dims] - 1e-9)  # a level shift's size, for good
  unshifted = np.setdiff1d(np.arange(series.shape[1]), dims)
  np.testing.assert_array_equal(lasting.series[:, unshifted], passing.series[:, unshifted])
  expected = passing.labels.copy()
  expected[shift.start:shift.end + 1] = 1
  np.testing.assert_array_equal(lasting.labels, expected)
  assert shift.end - shift.start + 1 < (len(series) - shift.start) // 4  # not to the end


def test_train_does_not_depend_on_anomaly_settings():
  a = synthetic.generate(seed=4, num_anomalies=2, anomaly_types=["spike"]).entity
  b = synthetic.generate(seed=4, num_anomalies=12, anomaly_scale=3.0).entity
  np.testing.assert_array_equal(a.train, b.train)


def test_zscore_detector_is_above_random_but_not_perfect():
  entity = synthetic.from_config(data_config().synthetic).entity
  average_precision = average_precision_score(entity.labels, _zscore_scores(entity))
  base_rate = entity.labels.mean()
  assert 2 * base_rate < average_precision < 0.9


def test_load_returns_a_dataset():
  config = data_config()
  config.entity = "demo"
  dataset = data.load(config)
  assert dataset.name == "synthetic" and dataset.num_features == 8
  assert dataset.entities[0].name == "demo"
  assert dataset.feature_names[0] == "cpu_user"


def test_small_series_work():
  entity = synthetic.generate(num_features=4, train_length=600, test_length=600,
                              num_anomalies=4).entity
  assert entity.test.shape == (600, 4) and len(entity.segments) == 4


def test_many_features_get_names():
  assert len(synthetic.generate(num_features=11, num_anomalies=2).feature_names) == 11


def test_unknown_type_is_refused():
  with pytest.raises(DataError, match="anomaly_types"):
    synthetic.generate(anomaly_types=["spike", "meteor"])


def test_too_many_anomalies_for_the_test_length_is_refused():
  with pytest.raises(DataError, match="too short"):
    synthetic.generate(test_length=100, num_anomalies=50)
