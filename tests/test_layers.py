"""The recurrent layers in tsad_jax/models/layers.py."""

import flax.linen as nn
import jax
import jax.numpy as jnp
from numpy.testing import assert_allclose

from tsad_jax.models import layers


class _RNNOnRepeated(nn.Module):
  """The reference: an LSTMCell under nn.RNN, reading the input repeated at every step."""

  features: int
  length: int

  @nn.compact
  def __call__(self, inputs):
    repeated = jnp.repeat(inputs[:, None, :], self.length, axis=1)
    return nn.RNN(layers.LSTMCell(self.features, name="cell"), return_carry=True)(repeated)


class _Repeated(nn.Module):
  features: int
  length: int

  @nn.compact
  def __call__(self, inputs):
    return layers.RepeatedInputLSTM(self.features, length=self.length, name="cell")(inputs)


def test_repeated_input_lstm_matches_an_lstm_cell_on_the_repeated_input():
  inputs = jax.random.normal(jax.random.key(0), (3, 5))
  reference, repeated = _RNNOnRepeated(4, length=7), _Repeated(4, length=7)
  params = reference.init(jax.random.key(1), inputs)
  assert (jax.tree.map(jnp.shape, repeated.init(jax.random.key(1), inputs))
          == jax.tree.map(jnp.shape, params))

  def loss(module, params, inputs):
    (c, h), states = module.apply(params, inputs)
    return jnp.sum(jnp.sin(states)) + jnp.sum(c * h)

  (c, h), states = repeated.apply(params, inputs)
  (c_ref, h_ref), states_ref = reference.apply(params, inputs)
  assert states.shape == (3, 7, 4)
  for got, want in ((states, states_ref), (c, c_ref), (h, h_ref)):
    assert_allclose(got, want, rtol=1e-5, atol=1e-6)
  grads = jax.grad(loss, argnums=(1, 2))(repeated, params, inputs)
  grads_ref = jax.grad(loss, argnums=(1, 2))(reference, params, inputs)
  jax.tree.map(lambda got, want: assert_allclose(got, want, rtol=1e-4, atol=1e-6), grads,
               grads_ref)
