"""The scorer maps window scores to exactly one score per timestep."""


import jax
import jax.numpy as jnp
import numpy as np
from numpy.testing import assert_allclose
import pytest

from tests import fakes
from tsad_jax import scoring


def _position_model(scores_every_point: bool):
  """A fake model whose score of a point is the point's own value (feature 0)."""

  def score(model, params, windows, *, rng):
    del model, params, rng
    return windows if scores_every_point else windows[:, -1:]

  return fakes.model_file(score=score, SCORES_EVERY_POINT=scores_every_point)


def test_last_rule_gives_each_timestep_its_own_value():
  series = np.arange(23, dtype=np.float32)[:, None] * np.ones((1, 2), np.float32)
  scorer = scoring.Scorer(_position_model(True), None, window=5, batch_size=4)
  got = scorer(None, series, [13, 10], jax.random.PRNGKey(0))
  assert_allclose(got, series)


def test_last_rule_backfills_the_first_window_for_last_point_models():
  series = np.arange(12, dtype=np.float32)[:, None]
  scorer = scoring.Scorer(_position_model(False), None, window=4, batch_size=3)
  got = scorer(None, series, [12], jax.random.PRNGKey(0))[:, 0]
  assert_allclose(got, [3, 3, 3, 3, 4, 5, 6, 7, 8, 9, 10, 11])


def test_mean_rule_averages_identical_values_to_themselves():
  series = np.arange(17, dtype=np.float32)[:, None]
  scorer = scoring.Scorer(_position_model(True), None, window=4, batch_size=5, rule="mean")
  assert_allclose(scorer(None, series, [9, 8], jax.random.PRNGKey(0)), series)


def test_mean_rule_counts_each_covering_window():
  def score(model, params, windows, *, rng):
    return jnp.ones_like(windows) * windows[:, :1]  # every point gets its window's start value

  lib = fakes.model_file(score=score, SCORES_EVERY_POINT=True)
  series = np.arange(5, dtype=np.float32)[:, None]
  got = scoring.Scorer(lib, None, window=3, batch_size=2, rule="mean")(
      None, series, [5], jax.random.PRNGKey(0))[:, 0]
  # Windows start at 0, 1, 2; timestep 2 is covered by all three: (0 + 1 + 2) / 3.
  assert_allclose(got, [0.0, 0.5, 1.0, 1.5, 2.0])


def test_stride_scores_every_kth_window_and_holds_in_between():
  rng = np.random.default_rng(0)
  series = rng.normal(size=(41, 3)).astype(np.float32)
  lengths, window = [23, 18], 5
  key = jax.random.PRNGKey(0)
  full = scoring.Scorer(_position_model(False), None, window=window, batch_size=4)(
      None, series, lengths, key)
  strided = scoring.Scorer(_position_model(False), None, window=window, batch_size=4, stride=3)(
      None, series, lengths, key)
  for offset, length in ((0, 23), (23, 18)):
    got, want = strided[offset:offset + length], full[offset:offset + length]
    ends = np.append(np.arange(window - 1, length, 3), length - 1)  # + the last window
    assert_allclose(got[ends], want[ends])
    for t in range(window - 1, length):  # the latest scored end at or before t
      assert_allclose(got[t], want[ends[ends <= t].max()])
    assert_allclose(got[:window - 1], np.repeat(want[window - 1:window], window - 1, axis=0))


def test_stride_one_hold_is_the_identity():
  values = np.arange(12.0)[:, None]
  held = scoring.hold_scores(np.arange(3, 12), values[3:], length=12, window=4)
  assert_allclose(held, values[3:])
  held = scoring.hold_scores(np.array([3, 6, 11]), np.array([1.0, 2.0, 3.0]), length=12, window=4)
  assert_allclose(held, [1, 1, 1, 2, 2, 2, 2, 2, 3])


def test_mean_rule_with_a_score_of_several_parts():
  def score_parts(model, params, windows, *, rng):
    del model, params, rng
    return jnp.stack([windows, 2.0 * windows], axis=2)  # (B, W, 2, D)

  lib = fakes.model_file(score=score_parts, SCORES_EVERY_POINT=True)
  series = np.arange(26, dtype=np.float32).reshape(13, 2)
  for rule in ("mean", "last"):
    got = scoring.Scorer(lib, None, window=4, batch_size=3, rule=rule)(
        None, series, [7, 6], jax.random.PRNGKey(0))
    assert got.shape == (13, 2, 2)
    assert_allclose(got, np.stack([series, 2.0 * series], axis=1))


def test_mean_rule_with_a_stride_holds_last_point_scores():
  series = np.arange(14, dtype=np.float32)[:, None]
  got = scoring.Scorer(_position_model(False), None, window=4, batch_size=2, rule="mean",
                       stride=4)(None, series, [14], jax.random.PRNGKey(0))[:, 0]
  # Windows end at 3, 7, 11 and 13 (the last one); the others hold the latest.
  assert_allclose(got, [3, 3, 3, 3, 3, 3, 3, 7, 7, 7, 7, 11, 11, 13])


def test_stride_must_be_positive():
  with pytest.raises(ValueError, match="stride"):
    scoring.Scorer(_position_model(False), None, window=4, batch_size=2, stride=0)


def test_series_of_one_power_of_two_bucket_share_one_compilation():
  model_lib = _position_model(True)
  rng = np.random.default_rng(0)
  key = jax.random.PRNGKey(0)
  scoring._score_windows.clear_cache()
  for length in (40, 57, 64):  # all padded to 64 rows on the device
    series = rng.normal(size=(length, 2)).astype(np.float32)
    got = scoring.Scorer(model_lib, None, window=5, batch_size=4)(None, series, [length], key)
    assert_allclose(got, series)
  assert scoring._score_windows._cache_size() == 1
  series = rng.normal(size=(65, 2)).astype(np.float32)  # the next bucket: 128 rows
  scoring.Scorer(model_lib, None, window=5, batch_size=4)(None, series, [65], key)
  assert scoring._score_windows._cache_size() == 2
