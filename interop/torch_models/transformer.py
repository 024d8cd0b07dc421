"""PyTorch twin of tsad_jax/models/transformer.py, from torch's standard encoder modules.

No public checkpoint layout is required. The blocks are those a PyTorch user
writes: nn.TransformerEncoder of nn.TransformerEncoderLayer (batch_first,
norm_first: pre-LayerNorm), set up to compute the Flax blocks' function. The
state_dict:

  input_projection.{weight,bias}                 Linear(D, d_model)
  encoder.layers.{i}.self_attn.in_proj_{weight,bias}, .out_proj.{weight,bias}
  encoder.layers.{i}.linear1.*, .linear2.*      the feed-forward layer
  encoder.layers.{i}.norm1.*, .norm2.*          before attention, before feed-forward
  encoder.norm.{weight,bias}                     the final LayerNorm
  output.{weight,bias}                           Linear(d_model, D)

The sinusoidal position code is a fixed function of the window length, not a
parameter, as in Flax.
"""

import functools

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from interop import layouts
from tsad_jax.models import transformer

# flax.linen.LayerNorm's epsilon; torch's default is 1e-5.
LAYER_NORM_EPS = 1e-6
# flax.linen.gelu is the tanh approximation; torch's "gelu" is the exact one.
tanh_gelu = functools.partial(F.gelu, approximate="tanh")


def positions(length: int, dim: int) -> torch.Tensor:
  """(length, dim) sinusoidal position code, the Flax model's own."""
  return torch.from_numpy(np.asarray(transformer.sinusoidal_positions(length, dim)))


def encoder(*, d_model: int, n_heads: int, d_ff: int, num_layers: int,
            dropout: float) -> nn.TransformerEncoder:
  """`num_layers` pre-LayerNorm blocks and the final LayerNorm: Flax's EncoderBlocks + final_norm.

  The activation being a partial (not F.gelu itself) also keeps torch off its
  fused inference path, which would run the exact GELU.
  """
  layer = nn.TransformerEncoderLayer(
      d_model, n_heads, dim_feedforward=d_ff, dropout=dropout, activation=tanh_gelu,
      layer_norm_eps=LAYER_NORM_EPS, batch_first=True, norm_first=True)
  # The Flax block drops out the two residual branches only (dropout1, dropout2),
  # neither the attention weights nor the feed-forward hidden layer.
  layer.self_attn.dropout = 0.0
  layer.dropout = nn.Identity()
  return nn.TransformerEncoder(layer, num_layers, norm=nn.LayerNorm(d_model, eps=LAYER_NORM_EPS),
                               enable_nested_tensor=False)


def encoder_entries(prefix: str, block_paths: list[str], norm_path: str, *,
                    n_heads: int) -> list[layouts.Entry]:
  """Key map of `encoder(...)` at `prefix`: layer i <-> Flax EncoderBlock `block_paths[i]`."""
  out = []
  for i, block in enumerate(block_paths):
    layer = f"{prefix}.layers.{i}"
    out += [*layouts.attention(f"{layer}.self_attn", f"{block}/attention", num_heads=n_heads),
            *layouts.linear(f"{layer}.linear1", f"{block}/feed_forward_in"),
            *layouts.linear(f"{layer}.linear2", f"{block}/feed_forward_out"),
            *layouts.layer_norm(f"{layer}.norm1", f"{block}/attention_norm"),
            *layouts.layer_norm(f"{layer}.norm2", f"{block}/feed_forward_norm")]
  return out + layouts.layer_norm(f"{prefix}.norm", norm_path)


class TransformerReconstructor(nn.Module):
  """Window (B, W, D) -> reconstruction (B, W, D)."""

  def __init__(self, spec: transformer.TransformerReconstructor):
    super().__init__()
    self.d_model = spec.d_model
    self.input_projection = nn.Linear(spec.num_features, spec.d_model)
    self.encoder = encoder(d_model=spec.d_model, n_heads=spec.n_heads, d_ff=spec.d_ff,
                           num_layers=spec.num_layers, dropout=spec.dropout)
    self.output = nn.Linear(spec.d_model, spec.num_features)

  def forward(self, windows: torch.Tensor) -> torch.Tensor:
    x = self.input_projection(windows)
    x = x + positions(windows.shape[1], self.d_model).to(x)
    return self.output(self.encoder(x))


def build(model_config, *, num_features: int, window: int) -> TransformerReconstructor:
  """The twin of `transformer.build(...)`; raises the same ValueError on a bad config."""
  return TransformerReconstructor(
      transformer.build(model_config, num_features=num_features, window=window))


def entries(model_config, *, num_features: int, window: int) -> list[layouts.Entry]:
  """Every state_dict tensor <-> its Flax parameter, in state_dict order."""
  del num_features, window
  blocks = [f"block_{i}" for i in range(model_config.num_layers)]
  return [*layouts.linear("input_projection", "input_projection"),
          *encoder_entries("encoder", blocks, "final_norm", n_heads=model_config.n_heads),
          *layouts.linear("output", "output")]


def forward(module, windows, noise):
  """The reconstruction, as the Flax model's apply (the model draws nothing)."""
  del noise
  return module(windows)


def loss(module, windows, noise):
  """Mean squared reconstruction error (reconstruction.loss)."""
  del noise
  return torch.mean(torch.square(module(windows) - windows))


def score(module, windows, noise):
  """(B, W, D) squared reconstruction error (reconstruction.score)."""
  del noise
  return torch.square(module(windows) - windows)
