"""Normalisation: fitted on train only, test clipped for minmax, constant features safe."""

import numpy as np
import pytest

from tsad_jax.data import normalize


def _train():
  rng = np.random.default_rng(0)
  return rng.normal(5.0, 2.0, size=(200, 3)).astype(np.float32)


def test_minmax_maps_train_to_unit_range():
  train = _train()
  out = normalize.apply(normalize.fit(train, "minmax"), train)
  np.testing.assert_allclose(out.min(axis=0), 0.0, atol=1e-6)
  np.testing.assert_allclose(out.max(axis=0), 1.0, atol=1e-6)


def test_minmax_clips_test_to_train_range():
  train = _train()
  stats = normalize.fit(train, "minmax", clip=0.0)
  test = np.stack([train.max(axis=0) * 3, train.min(axis=0) - 10, train.mean(axis=0)])
  out = normalize.apply(stats, test)
  np.testing.assert_array_equal(out[0], 1.0)
  np.testing.assert_array_equal(out[1], 0.0)
  assert np.all((out[2] > 0) & (out[2] < 1))


def test_minmax_keeps_a_margin_beyond_the_train_range():
  train = np.array([[0.0], [2.0]])
  stats = normalize.fit(train, "minmax", clip=3.0)
  out = normalize.apply(stats, np.array([[3.0], [-1.0], [100.0], [-100.0]]))
  np.testing.assert_allclose(out[:, 0], [1.5, -0.5, 4.0, -3.0])
  with pytest.raises(ValueError, match="minmax_clip"):
    normalize.fit(train, "minmax", clip=-1.0)


def test_fit_uses_train_only():
  train = _train()
  test = train * 10 + 100
  stats = normalize.fit(train, "zscore")
  np.testing.assert_allclose(stats.offset, train.mean(axis=0), rtol=1e-6)
  np.testing.assert_allclose(stats.scale, train.std(axis=0), rtol=1e-5)
  out = normalize.apply(stats, test)
  assert out.mean() > 10  # Test is far from train; not re-centred on itself.


def test_zscore_standardises_train_and_does_not_clip():
  train = _train()
  stats = normalize.fit(train, "zscore")
  out = normalize.apply(stats, train)
  np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-5)
  np.testing.assert_allclose(out.std(axis=0), 1.0, atol=1e-5)
  assert normalize.apply(stats, train * 100).max() > 10


def test_none_is_identity():
  train = _train()
  np.testing.assert_array_equal(normalize.apply(normalize.fit(train, "none"), train), train)


@pytest.mark.parametrize("method", normalize.METHODS)
def test_constant_feature_does_not_divide_by_zero(method):
  train = np.ones((50, 2), dtype=np.float32) * np.float32([0.1, 7.0])
  stats = normalize.fit(train, method)
  out = normalize.apply(stats, np.concatenate([train, train + 1]))
  assert np.isfinite(out).all()


def test_keeps_float32():
  train = _train()
  assert normalize.apply(normalize.fit(train, "minmax"), train).dtype == np.float32


def test_unknown_method_lists_valid_ones():
  with pytest.raises(ValueError, match="minmax"):
    normalize.fit(_train(), "robust")
