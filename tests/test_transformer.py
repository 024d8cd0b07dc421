"""The Transformer reconstruction model: shapes, randomness, order, learning, config checks.

The model here has one encoder block, which keeps the compiles short; the
three-block default config takes a training step in tests/test_configs.py.
"""

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from configs import common
from tsad_jax.models import transformer

BATCH, WINDOW, FEATURES = 4, 12, 3


def _model_config(**overrides) -> ml_collections.ConfigDict:
  config = common.get_config("transformer").model
  config.update(dict(d_model=16, n_heads=2, num_layers=1, d_ff=32, dropout=0.1))
  config.update(overrides)
  return config


def _model_and_params(**overrides):
  """A model built with `overrides`; dropout does not change the parameters, so they are shared."""
  model = transformer.build(_model_config(**overrides), num_features=FEATURES, window=WINDOW)
  return model, _params()


@functools.cache
def _params():
  model = transformer.build(_model_config(), num_features=FEATURES, window=WINDOW)
  return jax.jit(model.init)({"params": jax.random.PRNGKey(0), "dropout": jax.random.PRNGKey(1)},
                             jnp.zeros((1, WINDOW, FEATURES)))["params"]


def _reconstruct(model, params, windows, *, train=False, seed=0):
  return _apply(model, train, params, windows, jax.random.PRNGKey(seed))


@functools.partial(jax.jit, static_argnums=(0, 1))
def _apply(model, train, params, windows, key):
  return model.apply({"params": params}, windows, train=train, rngs={"dropout": key})


def _windows(seed: int = 0) -> jax.Array:
  return jnp.asarray(
      np.random.default_rng(seed).normal(size=(BATCH, WINDOW, FEATURES)), jnp.float32)


def test_reconstruction_shape():
  model, params = _model_and_params()
  reconstruction = _reconstruct(model, params, _windows())
  assert reconstruction.shape == (BATCH, WINDOW, FEATURES)
  assert bool(jnp.all(jnp.isfinite(reconstruction)))


def test_blocks_follow_num_layers():
  model = transformer.build(_model_config(num_layers=3), num_features=FEATURES, window=WINDOW)
  shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros((1, WINDOW, FEATURES)))
  names = set(shapes["params"])
  assert {"block_0", "block_1", "block_2", "input_projection", "final_norm", "output"} == names
  assert shapes["params"]["output"]["kernel"].shape == (16, FEATURES)


def test_score_and_loss():
  model, params = _model_and_params()
  windows = _windows()

  @jax.jit
  def score_and_loss(params, windows, key):
    scores = transformer.score(model, params, windows, rng=key)
    return scores, transformer.loss(model, params, windows, rng=key, train=False)

  scores, (value, metrics) = score_and_loss(params, windows, jax.random.PRNGKey(1))
  assert transformer.SCORES_EVERY_POINT
  assert scores.shape == (BATCH, WINDOW, FEATURES)
  assert bool(jnp.all(scores >= 0.0))
  reconstruction = _reconstruct(model, params, windows)
  np.testing.assert_allclose(scores, jnp.square(reconstruction - windows), rtol=1e-5, atol=1e-6)
  assert set(metrics) == {"mse"} and float(metrics["mse"]) == float(value)
  np.testing.assert_allclose(value, jnp.mean(scores), rtol=1e-5)
  # Evaluation ignores the key: no dropout.
  again, (value_again, _) = score_and_loss(params, windows, jax.random.PRNGKey(2))
  np.testing.assert_array_equal(scores, again)
  assert float(value) == float(value_again)


def test_eval_mode_is_deterministic():
  model, params = _model_and_params()
  windows = _windows()
  np.testing.assert_array_equal(_reconstruct(model, params, windows, train=False, seed=1),
                                _reconstruct(model, params, windows, train=False, seed=2))


def test_dropout_changes_output_in_train_mode():
  model, params = _model_and_params(dropout=0.3)
  windows = _windows()
  first = _reconstruct(model, params, windows, train=True, seed=1)
  assert not np.allclose(first, _reconstruct(model, params, windows, train=True, seed=2))
  np.testing.assert_array_equal(  # same key, same draw
      first, _reconstruct(model, params, windows, train=True, seed=1))
  assert not np.allclose(first, _reconstruct(model, params, windows))


def test_positional_encoding_makes_the_model_order_sensitive():
  model, params = _model_and_params()
  windows = _windows()
  permutation = np.random.default_rng(0).permutation(WINDOW)
  of_permuted = _reconstruct(model, params, windows[:, permutation])
  permuted_output = _reconstruct(model, params, windows)[:, permutation]
  # Self-attention alone commutes with permuting the steps; the position code breaks that.
  assert float(jnp.max(jnp.abs(of_permuted - permuted_output))) > 1e-3


def test_sinusoidal_positions():
  code = transformer.sinusoidal_positions(50, 7)
  assert code.shape == (50, 7)
  np.testing.assert_allclose(code[0], [0.0, 1.0] * 3 + [0.0], atol=1e-7)
  np.testing.assert_allclose(code[:, 0], np.sin(np.arange(50)), atol=1e-6)
  assert len({tuple(np.round(row, 5)) for row in code}) == 50  # every step distinct


def test_training_steps_lower_the_loss():
  model, params = _model_and_params(dropout=0.0)
  steps = np.linspace(0.0, 4.0 * np.pi, WINDOW)[None, :, None]
  scales = np.array([0.5, 1.0, 1.5, 2.0])[:, None, None]
  windows = jnp.asarray(scales * np.sin(steps + np.arange(FEATURES)), jnp.float32)

  @jax.jit
  def step(params):
    loss_fn = lambda p: transformer.loss(model, p, windows, rng=jax.random.PRNGKey(0),
                                         train=True)[0]
    value, grads = jax.value_and_grad(loss_fn)(params)
    return jax.tree.map(lambda p, g: p - 0.1 * g, params, grads), value

  params, first = step(params)
  for _ in range(30):
    params, last = step(params)
  assert float(last) < 0.25 * float(first)


@pytest.mark.parametrize("field,value,message", [
    ("n_heads", 3, "config.model.n_heads=3 must divide config.model.d_model=16"),
    ("n_heads", 0, "config.model.n_heads=0"),
    ("d_model", -8, "config.model.d_model=-8"),
    ("num_layers", 0, "config.model.num_layers=0"),
    ("d_ff", 0, "config.model.d_ff=0"),
    ("dropout", 1.0, "config.model.dropout=1.0"),
    ("dropout", -0.1, "config.model.dropout=-0.1"),
])
def test_bad_config_values_raise(field, value, message):
  config = _model_config()
  config[field] = value
  with pytest.raises(ValueError, match=message.replace(".", r"\.")):
    transformer.build(config, num_features=FEATURES, window=WINDOW)
