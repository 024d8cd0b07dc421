"""The scorer maps window scores to exactly one score per timestep."""

import types

import jax
import jax.numpy as jnp
import numpy as np
from numpy.testing import assert_allclose

from tsad_jax import scoring


def _position_model(scores_every_point: bool):
  """A fake model whose score of a point is the point's own value (feature 0)."""

  def score(model, params, windows, *, rng):
    del model, params, rng
    return windows if scores_every_point else windows[:, -1:]

  return types.SimpleNamespace(score=score, SCORES_EVERY_POINT=scores_every_point)


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

  lib = types.SimpleNamespace(score=score, SCORES_EVERY_POINT=True)
  series = np.arange(5, dtype=np.float32)[:, None]
  got = scoring.Scorer(lib, None, window=3, batch_size=2, rule="mean")(
      None, series, [5], jax.random.PRNGKey(0))[:, 0]
  # Windows start at 0, 1, 2; timestep 2 is covered by all three: (0 + 1 + 2) / 3.
  assert_allclose(got, [0.0, 0.5, 1.0, 1.5, 2.0])
