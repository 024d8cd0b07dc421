"""How one PyTorch tensor (or several) becomes Flax parameters, and back.

An `Entry` links state_dict keys to Flax parameter paths with a pair of
inverse functions. Both directions only transpose, flip, reshape, split or
concatenate, so a round trip is bit-exact. A model's key map is a list of
entries built from the helpers below, one per layer kind:

  linear        torch Linear weight (out, in)       <-> Dense kernel (in, out)
  conv          torch ConvNd weight (O, I, *k)      <-> Conv kernel (*k, I, O)
  conv_transpose torch ConvTransposeNd (I, O, *k)   <-> ConvTranspose kernel
                (*k, I, O), spatially flipped (PyTorch's transposed convolution
                is the gradient of a convolution; Flax's, by default, is not)
  layer_norm    weight, bias                        <-> scale, bias
  rnn_layer     nn.GRU / nn.LSTM layer k            <-> tsad_jax.models.layers cell
  attention     nn.MultiheadAttention (fused in_proj) <-> MultiHeadDotProductAttention
  same          any tensor kept as it is
"""

from collections.abc import Callable
import dataclasses

import numpy as np

FlaxPath = tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Entry:
  """`torch_keys` <-> `flax_paths` through `to_flax` and its inverse `to_torch`.

  to_flax(*torch arrays) -> tuple of flax arrays, in the orders given;
  to_torch(*flax arrays) -> tuple of torch arrays.
  """
  torch_keys: tuple[str, ...]
  flax_paths: tuple[FlaxPath, ...]
  to_flax: Callable[..., tuple[np.ndarray, ...]]
  to_torch: Callable[..., tuple[np.ndarray, ...]]


def _path(flax_path: str | FlaxPath) -> FlaxPath:
  return tuple(flax_path.split("/")) if isinstance(flax_path, str) else tuple(flax_path)


def _one(torch_key: str, flax_path, to_flax, to_torch) -> Entry:
  return Entry((torch_key,), (_path(flax_path),), lambda a: (to_flax(a),),
               lambda a: (to_torch(a),))


def same(torch_key: str, flax_path) -> list[Entry]:
  """A tensor with the same layout on both sides."""
  return [_one(torch_key, flax_path, np.asarray, np.asarray)]


def _bias(prefix: str, flax_path, bias: bool) -> list[Entry]:
  return same(f"{prefix}.bias", (*_path(flax_path), "bias")) if bias else []


def linear(prefix: str, flax_path, *, bias: bool = True) -> list[Entry]:
  """torch.nn.Linear `prefix` <-> flax.linen.Dense at `flax_path`."""
  transpose = lambda a: np.ascontiguousarray(np.asarray(a).T)
  return [_one(f"{prefix}.weight", (*_path(flax_path), "kernel"), transpose, transpose),
          *_bias(prefix, flax_path, bias)]


def _conv_to_flax(a):
  a = np.asarray(a)  # (O, I, *k) -> (*k, I, O)
  return np.ascontiguousarray(np.transpose(a, (*range(2, a.ndim), 1, 0)))


def _conv_to_torch(a):
  a = np.asarray(a)  # (*k, I, O) -> (O, I, *k)
  n = a.ndim - 2
  return np.ascontiguousarray(np.transpose(a, (n + 1, n, *range(n))))


def conv(prefix: str, flax_path, *, bias: bool = True) -> list[Entry]:
  """torch.nn.Conv1d/2d `prefix` <-> flax.linen.Conv at `flax_path`."""
  return [_one(f"{prefix}.weight", (*_path(flax_path), "kernel"), _conv_to_flax, _conv_to_torch),
          *_bias(prefix, flax_path, bias)]


def _flip_spatial(a):
  a = np.asarray(a)
  return np.ascontiguousarray(np.flip(a, axis=tuple(range(a.ndim - 2))))


def conv_transpose(prefix: str, flax_path, *, bias: bool = True) -> list[Entry]:
  """torch.nn.ConvTranspose1d/2d <-> flax.linen.ConvTranspose (transpose_kernel=False).

  torch keeps (I, O, *k); Flax's kernel is (*k, I, O) and is applied without
  the flip that PyTorch's gradient-of-convolution definition implies.
  """
  def to_flax(a):
    a = np.asarray(a)  # (I, O, *k) -> (*k, I, O), flipped
    return _flip_spatial(np.transpose(a, (*range(2, a.ndim), 0, 1)))

  def to_torch(a):
    a = _flip_spatial(a)
    n = a.ndim - 2
    return np.ascontiguousarray(np.transpose(a, (n, n + 1, *range(n))))

  return [_one(f"{prefix}.weight", (*_path(flax_path), "kernel"), to_flax, to_torch),
          *_bias(prefix, flax_path, bias)]


def layer_norm(prefix: str, flax_path) -> list[Entry]:
  """torch.nn.LayerNorm `prefix` <-> flax.linen.LayerNorm at `flax_path`."""
  return [*same(f"{prefix}.weight", (*_path(flax_path), "scale")),
          *same(f"{prefix}.bias", (*_path(flax_path), "bias"))]


def rnn_layer(prefix: str, layer: int, flax_path) -> list[Entry]:
  """Layer `layer` of torch.nn.GRU/LSTM `prefix` <-> a `tsad_jax.models.layers` cell.

  Both keep PyTorch's gate order; only the weight matrices are transposed.
  """
  transpose = lambda a: np.ascontiguousarray(np.asarray(a).T)
  cell = _path(flax_path)
  return [_one(f"{prefix}.weight_ih_l{layer}", (*cell, "w_ih"), transpose, transpose),
          _one(f"{prefix}.weight_hh_l{layer}", (*cell, "w_hh"), transpose, transpose),
          *same(f"{prefix}.bias_ih_l{layer}", (*cell, "b_ih")),
          *same(f"{prefix}.bias_hh_l{layer}", (*cell, "b_hh"))]


def attention(prefix: str, flax_path, *, num_heads: int) -> list[Entry]:
  """torch.nn.MultiheadAttention (one fused in_proj) <-> flax MultiHeadDotProductAttention.

  torch: in_proj_weight (3E, E) rows [q; k; v], in_proj_bias (3E,), out_proj.
  Flax: query/key/value kernels (E, heads, E/heads), biases (heads, E/heads),
  out kernel (heads, E/heads, E).
  """
  base = _path(flax_path)
  qkv = tuple((*base, name, leaf) for leaf in ("kernel", "bias")
              for name in ("query", "key", "value"))

  def to_flax(weight, bias):
    dim = weight.shape[1]
    kernels = [w.T.reshape(dim, num_heads, -1) for w in np.split(np.asarray(weight), 3)]
    biases = [b.reshape(num_heads, -1) for b in np.split(np.asarray(bias), 3)]
    return tuple(np.ascontiguousarray(a) for a in (*kernels, *biases))

  def to_torch(q, k, v, q_bias, k_bias, v_bias):
    weight = np.concatenate([np.asarray(w).reshape(w.shape[0], -1).T for w in (q, k, v)])
    bias = np.concatenate([np.asarray(b).reshape(-1) for b in (q_bias, k_bias, v_bias)])
    return np.ascontiguousarray(weight), bias

  def out_to_flax(weight):
    weight = np.asarray(weight)  # (E_out, E_in) -> (heads, E_in/heads, E_out)
    return np.ascontiguousarray(weight.T.reshape(num_heads, -1, weight.shape[0]))

  def out_to_torch(kernel):
    kernel = np.asarray(kernel)
    return np.ascontiguousarray(kernel.reshape(-1, kernel.shape[-1]).T)

  return [Entry((f"{prefix}.in_proj_weight", f"{prefix}.in_proj_bias"), qkv, to_flax, to_torch),
          _one(f"{prefix}.out_proj.weight", (*base, "out", "kernel"), out_to_flax, out_to_torch),
          *same(f"{prefix}.out_proj.bias", (*base, "out", "bias"))]
