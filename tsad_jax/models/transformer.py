"""Transformer encoder: reconstruct a window through self-attention over its steps.

Each step's features are projected to `d_model`, a fixed sinusoidal position
code is added (without it self-attention would not know the order of the
steps), and `num_layers` pre-LayerNorm encoder blocks mix the steps: each adds
multi-head self-attention, then a GELU feed-forward layer, to its input through
a residual connection, with dropout on both branches' outputs in training. A
final LayerNorm and a dense layer map every step back to the features. The
anomaly score of a point is its squared reconstruction error, per feature.
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from tsad_jax.models import Hooks
from tsad_jax.models import reconstruction

TITLE = "Transformer"
SCORING_FIELDS = ()
SCORES_EVERY_POINT = True
HOOKS = Hooks()


def sinusoidal_positions(length: int, dim: int) -> np.ndarray:
  """(length, dim) position code: sin on even channels, cos on odd ones.

  Channel pair (2i, 2i + 1) oscillates with wavelength 2π·10000^(2i/dim), so
  nearby steps get similar codes and every step in a window a distinct one.
  """
  positions = np.arange(length, dtype=np.float64)[:, None]
  pairs = np.arange((dim + 1) // 2, dtype=np.float64)[None, :]
  angles = positions / np.power(10000.0, 2.0 * pairs / dim)
  code = np.empty((length, 2 * pairs.shape[1]), dtype=np.float64)
  code[:, 0::2] = np.sin(angles)
  code[:, 1::2] = np.cos(angles)
  return code[:, :dim].astype(np.float32)


def fused_attention(query, key, value, mask=None):
  """Softmax(QK^T / sqrt(head dim)) V, Flax's default attention without attention dropout,
  as `jax.nn.dot_product_attention`, which XLA compiles to faster code. That one takes
  its softmax in float32 whatever the input, so float64 (interop.parity) keeps Flax's."""
  if query.dtype == jnp.float64:
    return nn.dot_product_attention(query, key, value, mask=mask)
  return jax.nn.dot_product_attention(query, key, value, mask=mask)


class EncoderBlock(nn.Module):
  """Pre-LayerNorm block: x + Dropout(Attention(LN(x))), then x + Dropout(FeedForward(LN(x)))."""

  d_model: int
  n_heads: int
  d_ff: int
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
    deterministic = not train
    h = nn.LayerNorm(name="attention_norm")(x)
    h = nn.MultiHeadDotProductAttention(
        num_heads=self.n_heads, qkv_features=self.d_model, out_features=self.d_model,
        attention_fn=fused_attention, deterministic=True, name="attention")(h, h)
    x = x + nn.Dropout(self.dropout, deterministic=deterministic)(h)
    h = nn.LayerNorm(name="feed_forward_norm")(x)
    h = nn.Dense(self.d_ff, name="feed_forward_in")(h)
    h = nn.gelu(h)
    h = nn.Dense(self.d_model, name="feed_forward_out")(h)
    return x + nn.Dropout(self.dropout, deterministic=deterministic)(h)


class TransformerReconstructor(nn.Module):
  """Window (B, W, D) -> reconstruction (B, W, D)."""

  num_features: int
  d_model: int
  n_heads: int
  num_layers: int
  d_ff: int
  dropout: float

  @nn.compact
  def __call__(self, windows: jax.Array, *, train: bool = False) -> jax.Array:
    x = nn.Dense(self.d_model, name="input_projection")(windows)
    x = x + jnp.asarray(sinusoidal_positions(windows.shape[1], self.d_model))
    for i in range(self.num_layers):
      x = EncoderBlock(self.d_model, self.n_heads, self.d_ff, self.dropout,
                       name=f"block_{i}")(x, train=train)
    x = nn.LayerNorm(name="final_norm")(x)
    return nn.Dense(self.num_features, name="output")(x)


def check_positive_ints(model_config: ml_collections.ConfigDict, fields) -> None:
  """Raises ValueError naming the first of `config.model.<fields>` that is not an integer > 0."""
  for field in fields:
    value = model_config[field]
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
      raise ValueError(f"config.model.{field}={value!r} must be a positive integer.")


def _check_config(model_config: ml_collections.ConfigDict) -> None:
  """Raises ValueError naming the first `config.model` field with a bad value."""
  check_positive_ints(model_config, ("d_model", "n_heads", "num_layers", "d_ff"))
  if model_config.d_model % model_config.n_heads:
    raise ValueError(f"config.model.n_heads={model_config.n_heads} must divide "
                     f"config.model.d_model={model_config.d_model}.")
  dropout = model_config.dropout
  if (isinstance(dropout, bool) or not isinstance(dropout, int | float)
      or not math.isfinite(dropout) or not 0.0 <= dropout < 1.0):
    raise ValueError(f"config.model.dropout={dropout!r} must be a number in [0, 1).")


def defaults() -> ml_collections.ConfigDict:
  """The `config.model` section: Transformer encoder's defaults."""
  model = ml_collections.ConfigDict()
  model.name = "transformer"
  model.d_model = 128
  model.n_heads = 4  # must divide d_model
  model.num_layers = 3
  model.d_ff = 256
  model.dropout = 0.1
  return model


def build(model_config: ml_collections.ConfigDict, *, num_features: int, window: int):
  """The module for `config.model`; raises ValueError on a bad field value."""
  del window
  _check_config(model_config)
  return TransformerReconstructor(
      num_features=num_features,
      d_model=model_config.d_model,
      n_heads=model_config.n_heads,
      num_layers=model_config.num_layers,
      d_ff=model_config.d_ff,
      dropout=float(model_config.dropout))


loss = reconstruction.loss
score = reconstruction.score
