"""LSTM autoencoder: encode a window to one vector, decode it back.

The encoder LSTM's final hidden state summarises the window; the decoder LSTM
reads that vector at every step and a dense layer maps its states back to the
features (the layout of matanle51/LSTM_AutoEncoder). The anomaly score of a
point is its squared reconstruction error, per feature.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from tsad_jax.models import reconstruction

SCORES_EVERY_POINT = True


class LSTMAutoencoder(nn.Module):
  """Window (B, W, D) -> reconstruction (B, W, D)."""

  num_features: int
  hidden_size: int = 64
  dropout: float = 0.0

  @nn.compact
  def __call__(self, windows: jax.Array, *, train: bool = False) -> jax.Array:
    window = windows.shape[1]
    encoder = nn.RNN(nn.OptimizedLSTMCell(self.hidden_size, name="encoder_cell"),
                     return_carry=True, name="encoder")
    (_, code), _ = encoder(windows)
    code = nn.Dropout(self.dropout, deterministic=not train)(code)
    repeated = jnp.repeat(code[:, None, :], window, axis=1)
    decoded = nn.RNN(nn.OptimizedLSTMCell(self.hidden_size, name="decoder_cell"),
                     name="decoder")(repeated)
    return nn.Dense(self.num_features, name="output")(decoded)


def build(model_config: ml_collections.ConfigDict, *, num_features: int, window: int):
  del window
  return LSTMAutoencoder(
      num_features=num_features,
      hidden_size=model_config.hidden_size,
      dropout=model_config.dropout)


loss = reconstruction.loss
score = reconstruction.score
