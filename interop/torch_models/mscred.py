"""PyTorch twin of tsad_jax/models/mscred.py, with the layout of Zhang-Zhi-Jie/Pytorch-MSCRED.

The state_dict is that of the public `MSCRED(in_channels_encoder=len(scales),
in_channels_decoder=filters[3])` (model/mscred.py there), so its checkpoints load:

  cnn_encoder.conv{1..4}.0.{weight,bias}          Conv2d, SELU
  conv_lstm.conv{1..4}_lstm.cell0.W{x,h}{i,f,c,o}  the ConvLSTM gates: Wx* (with bias)
                                                   on the input, Wh* (no bias) on h
  cnn_decoder.deconv{4..1}.0.{weight,bias}        ConvTranspose2d, SELU

The function is the Flax model's, which differs from that repository's in two ways
that change no parameter shape:
- Its ConvLSTM feeds all steps' maps, stacked as a batch, to the cell at each of
  its `steps` iterations, so a step's state comes from its own map repeated,
  never from the earlier steps; here, as in the paper and the authors'
  TensorFlow code, the cell runs over the steps of each window.
- Its encoder pads the strided convs symmetrically (sizes that fit D = 6 mod 8
  only); here "SAME" pads as TensorFlow does, and the transposed convs crop to
  the skip connections' sizes (see mscred.same_padding, mscred.deconv_padding).
Its zero peephole tensors (Wci, Wcf, Wco, not parameters) are left out. It takes
one window's (steps, n_scales, D, D) signature matrices; this twin's forward takes
a batch of windows (B, W, D), its `reconstruct` a batch of signature matrices.
"""

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from interop import layouts
from tsad_jax.models import mscred

GATES = "ifco"  # input, forget, candidate (the repository's "c"), output: the Flax split


def signature_matrices(windows: torch.Tensor, spec: mscred.MSCRED) -> torch.Tensor:
  """(B, W, D) -> (B, steps, n_scales, D, D): mscred.signature_matrices, channels first."""
  per_scale = []
  for index in mscred.step_segments(windows.shape[1], scales=spec.scales, gap=spec.gap,
                                    steps=spec.steps):
    segments = windows[:, torch.from_numpy(index)]  # (B, steps, w, D)
    per_scale.append(torch.einsum("bkti,bktj->bkij", segments, segments) / index.shape[1])
  return torch.stack(per_scale, dim=2)


def temporal_attention(hidden: torch.Tensor) -> torch.Tensor:
  """(B, steps, C, H, W) -> (B, C, H, W): mscred.temporal_attention's weighted sum."""
  logits = torch.sum(hidden * hidden[:, -1:], dim=(2, 3, 4)) / hidden.shape[1]
  return torch.einsum("bk,bkchw->bchw", torch.softmax(logits, dim=1), hidden)


class CnnEncoder(nn.Module):
  """(N, n_scales, D, D) -> the 4 levels' maps; each conv is "SAME" padded, then SELU."""

  def __init__(self, in_channels: int, filters: tuple[int, ...]):
    super().__init__()
    channels = (in_channels, *filters)
    self.levels = list(zip(mscred.KERNELS, mscred.STRIDES, strict=True))
    for level, (kernel, stride) in enumerate(self.levels):
      self.add_module(f"conv{level + 1}", nn.Sequential(
          nn.Conv2d(channels[level], channels[level + 1], kernel, stride), nn.SELU()))

  def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
    maps = []
    for level, (kernel, stride) in enumerate(self.levels):
      before, after = mscred.same_padding(x.shape[-1], kernel, stride)
      x = getattr(self, f"conv{level + 1}")(F.pad(x, (before, after, before, after)))
      maps.append(x)
    return maps


class ConvLSTMCell(nn.Module):
  """One ConvLSTM step, the repository's 8 convs: gate g = Wxg(x) + Whg(h)."""

  def __init__(self, in_channels: int, hidden: int):
    super().__init__()
    pad = mscred.LSTM_KERNEL // 2
    for gate in GATES:
      self.add_module(f"Wx{gate}", nn.Conv2d(in_channels, hidden, mscred.LSTM_KERNEL,
                                             padding=pad))
      self.add_module(f"Wh{gate}", nn.Conv2d(hidden, hidden, mscred.LSTM_KERNEL, padding=pad,
                                             bias=False))

  def forward(self, x, h, c):
    i, f, g, o = (getattr(self, f"Wx{gate}")(x) + getattr(self, f"Wh{gate}")(h)
                  for gate in GATES)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


class ConvLSTM(nn.Module):
  """(B, steps, C, H, W) -> the hidden states (B, steps, hidden, H, W), from zero states."""

  def __init__(self, in_channels: int, hidden: int):
    super().__init__()
    self.cell0 = ConvLSTMCell(in_channels, hidden)
    self.hidden = hidden

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    h = x.new_zeros((x.shape[0], self.hidden, *x.shape[3:]))
    c, states = h, []
    for step in range(x.shape[1]):
      h, c = self.cell0(x[:, step], h, c)
      states.append(h)
    return torch.stack(states, dim=1)


class ConvLstmLevels(nn.Module):
  """The repository's Conv_LSTM: an attention ConvLSTM per level."""

  def __init__(self, filters: tuple[int, ...]):
    super().__init__()
    for level, channels in enumerate(filters):
      self.add_module(f"conv{level + 1}_lstm", ConvLSTM(channels, channels))

  def forward(self, maps: list[torch.Tensor]) -> list[torch.Tensor]:
    return [temporal_attention(getattr(self, f"conv{level + 1}_lstm")(x))
            for level, x in enumerate(maps)]


class CnnDecoder(nn.Module):
  """The attended maps -> (B, n_scales, D, D); each level is cropped to its skip's size."""

  def __init__(self, out_channels: int, filters: tuple[int, ...]):
    super().__init__()
    # deconv4 first: the repository's registration (and state_dict) order.
    for level in range(len(filters), 0, -1):
      kernel, stride = mscred.KERNELS[level - 1], mscred.STRIDES[level - 1]
      in_channels = filters[-1] if level == len(filters) else 2 * filters[level - 1]
      out = filters[level - 2] if level > 1 else out_channels
      self.add_module(f"deconv{level}", nn.Sequential(nn.ConvTranspose2d(
          in_channels, out, kernel, stride, mscred.deconv_padding(kernel, stride)), nn.SELU()))

  def forward(self, attended: list[torch.Tensor]) -> torch.Tensor:
    x = attended[-1]
    for level in range(len(attended), 1, -1):
      skip = attended[level - 2]
      x = getattr(self, f"deconv{level}")(x)[..., :skip.shape[-2], :skip.shape[-1]]
      x = torch.cat([x, skip], dim=1)
    return self.deconv1(x)


class MSCRED(nn.Module):
  """Window (B, W, D) -> {"reconstruction", "target"}, each (B, D, D, n_scales) as in Flax."""

  def __init__(self, spec: mscred.MSCRED):
    super().__init__()
    self.spec = spec
    self.cnn_encoder = CnnEncoder(len(spec.scales), spec.filters)
    self.conv_lstm = ConvLstmLevels(spec.filters)
    self.cnn_decoder = CnnDecoder(len(spec.scales), spec.filters)

  def reconstruct(self, matrices: torch.Tensor) -> torch.Tensor:
    """(B, steps, n_scales, D, D) signature matrices -> the last step's (B, n_scales, D, D)."""
    batch, steps = matrices.shape[:2]
    maps = self.cnn_encoder(matrices.flatten(0, 1))
    attended = self.conv_lstm([m.reshape(batch, steps, *m.shape[1:]) for m in maps])
    return self.cnn_decoder(attended)

  def forward(self, windows: torch.Tensor) -> dict[str, torch.Tensor]:
    matrices = signature_matrices(windows, self.spec)
    to_last = lambda m: m.permute(0, 2, 3, 1)  # channels last, as the Flax output
    return {"reconstruction": to_last(self.reconstruct(matrices)),
            "target": to_last(matrices[:, -1])}


def build(model_config, *, num_features: int, window: int) -> MSCRED:
  """The twin of `mscred.build(...)`; raises the same ValueError on a bad config or window."""
  return MSCRED(mscred.build(model_config, num_features=num_features, window=window))


def conv_lstm_cell(prefix: str, flax_path: str) -> list[layouts.Entry]:
  """The repository's cell (Wxi.weight, Wxi.bias, Whi.weight, ...) <-> the fused Flax gates conv.

  The Flax kernel's input channels are [x, h] and its output channels the gates
  in GATES order; the bias is the Wx* biases'.
  """
  kernel = layouts.conv(prefix, f"{flax_path}/gates", bias=False)[0]
  keys = tuple(f"{prefix}.{name}" for gate in GATES
               for name in (f"Wx{gate}.weight", f"Wx{gate}.bias", f"Wh{gate}.weight"))

  def to_flax(*arrays):
    x_weights, biases, h_weights = arrays[0::3], arrays[1::3], arrays[2::3]
    fused = np.concatenate([np.concatenate([wx, wh], axis=1)
                            for wx, wh in zip(x_weights, h_weights, strict=True)])
    return (*kernel.to_flax(fused), np.concatenate(biases))

  def to_torch(flax_kernel, bias):
    (fused,) = kernel.to_torch(flax_kernel)  # (4 hidden, in + hidden, k, k)
    hidden = fused.shape[0] // len(GATES)
    out = []
    for weight, b in zip(np.split(fused, len(GATES)), np.split(np.asarray(bias), len(GATES)),
                         strict=True):
      out += [np.ascontiguousarray(weight[:, :-hidden]), b,
              np.ascontiguousarray(weight[:, -hidden:])]
    return tuple(out)

  kernel_path = kernel.flax_paths[0]
  return [layouts.Entry(keys, (kernel_path, (*kernel_path[:-1], "bias")), to_flax, to_torch)]


def entries(model_config, *, num_features: int, window: int) -> list[layouts.Entry]:
  """Every state_dict tensor <-> its Flax parameter, in state_dict order."""
  del num_features, window
  levels = range(1, len(mscred.parse_ints(model_config.filters)) + 1)
  return [*(e for k in levels for e in layouts.conv(f"cnn_encoder.conv{k}.0",
                                                    f"encoder/conv_{k}")),
          *(e for k in levels for e in conv_lstm_cell(f"conv_lstm.conv{k}_lstm.cell0",
                                                      f"conv_lstm_{k}/cell")),
          *(e for k in reversed(levels) for e in layouts.conv_transpose(
              f"cnn_decoder.deconv{k}.0", f"decoder/deconv_{k}"))]


def _squared_residual(module, windows) -> torch.Tensor:
  out = module(windows)
  return torch.square(out["target"] - out["reconstruction"])


def forward(module, windows, noise):
  """The Flax model's output dict (the model draws nothing)."""
  del noise
  return module(windows)


def loss(module, windows, noise):
  """Mean squared error of the reconstructed last-step matrices (mscred.loss)."""
  del noise
  return torch.mean(_squared_residual(module, windows))


def score(module, windows, noise):
  """(B, 1, D): row i's squared residual total, or its count of broken entries (mscred.score)."""
  del noise
  residual = _squared_residual(module, windows)
  if module.spec.score_scales:
    residual = residual[..., [module.spec.scales.index(s) for s in module.spec.score_scales]]
  if module.spec.score_mode == "count":
    residual = (residual > module.spec.residual_threshold).float()
  return residual.sum(dim=(2, 3))[:, None, :]
