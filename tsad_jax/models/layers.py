"""Recurrent cells with PyTorch's parameter layout, for `flax.linen.RNN`.

Flax's own cells keep one dense layer per gate with a single bias; PyTorch's
nn.GRU and nn.LSTM keep all gates in one matrix per input, with one bias on the
input side and one on the hidden side. Holding PyTorch's layout (transposed to
Flax's (in, out) convention) makes a converted checkpoint bit-exact both ways,
and lets each step do one input and one hidden matmul instead of one per gate.

Parameters of a cell with H units reading D inputs, gates in PyTorch's order:
  w_ih (D, G*H), w_hh (H, G*H), b_ih (G*H,), b_hh (G*H,)
with G = 3 (r, z, n) for the GRU and G = 4 (i, f, g, o) for the LSTM.
Initialisation follows Flax's cells: LeCun normal input kernel, an orthogonal
recurrent kernel per gate, zero biases.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp


def _orthogonal_per_gate(gates: int):
  """Initialiser of an (H, gates*H) kernel: `gates` orthogonal H x H blocks side by side."""
  orthogonal = nn.initializers.orthogonal()

  def init(key, shape, dtype=jnp.float32):
    hidden = shape[0]
    keys = jax.random.split(key, gates)
    return jnp.concatenate([orthogonal(k, (hidden, hidden), dtype) for k in keys], axis=1)

  return init


class _FusedCell(nn.RNNCellBase):
  """Shared parameters and carry of the fused cells; subclasses define the step."""

  features: int

  GATES = 0  # set by subclasses

  def _weights(self, num_inputs: int):
    """w_ih, w_hh, b_ih, b_hh (declared on first use)."""
    width = self.GATES * self.features
    return (self.param("w_ih", nn.initializers.lecun_normal(), (num_inputs, width)),
            self.param("w_hh", _orthogonal_per_gate(self.GATES), (self.features, width)),
            self.param("b_ih", nn.initializers.zeros, (width,)),
            self.param("b_hh", nn.initializers.zeros, (width,)))

  def _gate_inputs(self, inputs, h):
    """The input and hidden pre-activations, each (..., GATES*H)."""
    w_ih, w_hh, b_ih, b_hh = self._weights(inputs.shape[-1])
    return inputs @ w_ih + b_ih, h @ w_hh + b_hh

  @property
  def num_feature_axes(self) -> int:
    return 1


# The gate arithmetic of both cells runs under jax.checkpoint: the backward scan recomputes
# it from the saved pre-activations instead of storing every gate of every step. On CPU
# those per-step stores cost more than the recomputation (bench.throughput's profile
# section: `copy` fell from 11-16% to under 10% of the recurrent models' op time).
@jax.checkpoint
def _gru_update(x_gates, h_gates, h):
  x_r, x_z, x_n = jnp.split(x_gates, 3, axis=-1)
  h_r, h_z, h_n = jnp.split(h_gates, 3, axis=-1)
  r = nn.sigmoid(x_r + h_r)
  z = nn.sigmoid(x_z + h_z)
  n = jnp.tanh(x_n + r * h_n)
  return (1.0 - z) * n + z * h


class GRUCell(_FusedCell):
  """h' = (1 - z) n + z h, as torch.nn.GRU computes it (reset gate inside n)."""

  GATES = 3

  @nn.compact
  def __call__(self, h, inputs):
    h = _gru_update(*self._gate_inputs(inputs, h), h)
    return h, h

  @nn.nowrap
  def initialize_carry(self, rng, input_shape):
    del rng
    return jnp.zeros((*input_shape[:-1], self.features))


@jax.checkpoint
def _lstm_update(gates, c):
  i, f, g, o = jnp.split(gates, 4, axis=-1)
  c = nn.sigmoid(f) * c + nn.sigmoid(i) * jnp.tanh(g)
  return c, nn.sigmoid(o) * jnp.tanh(c)


class LSTMCell(_FusedCell):
  """c' = f c + i g, h' = o tanh(c'), as torch.nn.LSTM; the carry is (c, h) as in Flax."""

  GATES = 4

  @nn.compact
  def __call__(self, carry, inputs):
    c, h = carry
    x_gates, h_gates = self._gate_inputs(inputs, h)
    c, h = _lstm_update(x_gates + h_gates, c)
    return (c, h), h

  @nn.nowrap
  def initialize_carry(self, rng, input_shape):
    del rng
    zeros = jnp.zeros((*input_shape[:-1], self.features))
    return zeros, zeros


class RepeatedInputLSTM(_FusedCell):
  """An LSTMCell run `length` steps from zero states on one input repeated at every step.

  (B, D) -> ((c_T, h_T), (B, T, H)): what `nn.RNN(LSTMCell(H), return_carry=True)`
  gives on the input repeated T times, with the same parameters. The input's
  matmul is done once instead of at every step, and so is its gradient: the
  LSTM autoencoder, whose decoder this is, trains 1.3x faster for it
  (docs/performance/notes.md).
  """

  length: int = 1
  GATES = 4

  @nn.compact
  def __call__(self, inputs):
    w_ih, w_hh, b_ih, b_hh = self._weights(inputs.shape[-1])
    x_gates = inputs @ w_ih + b_ih + b_hh

    def step(carry, _):
      c, h = _lstm_update(x_gates + carry[1] @ w_hh, carry[0])
      return (c, h), h

    zeros = jnp.zeros((*inputs.shape[:-1], self.features), inputs.dtype)
    carry, states = jax.lax.scan(step, (zeros, zeros), length=self.length)
    return carry, jnp.swapaxes(states, 0, 1)
