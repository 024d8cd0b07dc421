"""bench.mscred_scores: where a held score sits, and its library variant is the library's score."""

import jax
import numpy as np
from numpy.testing import assert_allclose
from numpy.testing import assert_array_equal

from bench import mscred_scores
from configs import common
from tsad_jax import run_setup
from tsad_jax import scoring
from tsad_jax import train


def test_forward_hold_is_causal_and_backward_hold_covers_the_window_end():
  ends, values = np.array([2, 5, 8]), np.array([10.0, 20.0, 30.0])
  assert_array_equal(mscred_scores.held(ends, values, 10, "forward"),
                     [10, 10, 10, 10, 10, 20, 20, 20, 30, 30])
  assert_array_equal(mscred_scores.held(ends, values, 10, "backward"),
                     [10, 10, 10, 20, 20, 20, 30, 30, 30, 30])


def test_all_scales_held_forward_is_the_library_score():
  config = common.get_config("mscred")
  config.model.update(scales="2,4", gap=2, steps=3, filters="4,4,4,4", score_stride=3)
  config.data.window = 8  # max(scales) + gap * (steps - 1)
  config.data.synthetic.update(num_features=3, train_length=200, test_length=60)
  config.eval.update(smoothing="none", feature_scaling="none", aggregation="sum")
  config.threshold.methods = "percentile"  # a 20-point held-out tail is too short for POT
  setup = run_setup.build(config)
  params = train.init_params(setup.model, key=jax.random.key(0), window=8, num_features=3)
  variants = mscred_scores.variant_scores(setup, params)
  library = scoring.for_config(setup.model_lib, setup.model, config)(
      params, setup.prepared.test, setup.prepared.test_lengths, jax.random.key(1))
  assert set(variants) == {(scale, alignment) for scale in ("all", "2", "4")
                           for alignment in mscred_scores.ALIGNMENTS}
  assert_allclose(variants[("all", "forward")], library.sum(axis=1), rtol=1e-5)
  assert_allclose(variants[("2", "backward")] + variants[("4", "backward")],
                  variants[("all", "backward")], rtol=1e-5)
  assert not np.allclose(variants[("all", "forward")], variants[("all", "backward")])
