"""PyTorch twin of tsad_jax/models/sd_mae.py (self-distilled masked autoencoder).

No public checkpoint layout is required. The encoder is torch's standard
nn.TransformerEncoder, set up as in interop/torch_models/transformer.py. The
state_dict:

  mask_token                                     (d_model,)
  patch_embedding.cnn.conv_{0,1}.{weight,bias}   Conv1d, kernel 3 (cnn_first, patch_cnn only)
  patch_embedding.projection.{weight,bias}       Linear(patch_size * channels, d_model)
  encoder.layers.{i}.*, encoder.norm.*           see transformer.py
  teacher.{hidden,output}.{weight,bias}          Linear(d_model, d_model), Linear(d_model, P * D)
  student.{hidden,output}.{weight,bias}          the same shapes

The training mask is the Flax model's draw, sown as noise "mask"; the
evaluation mask (the last patches) is fixed, a buffer outside the state_dict.
"""

import numpy as np
import torch
from torch import nn

from interop import layouts
from interop.torch_models import transformer as transformer_twin
from tsad_jax.models import sd_mae


class ConvStack(nn.Module):
  """Two zero-padded kernel-3 Conv1d, tanh-GELU, along the second-to-last axis.

  (..., L, C) -> (..., L, F): every leading axis is a batch axis, as in Flax.
  """

  def __init__(self, in_channels: int, features: int):
    super().__init__()
    padding = sd_mae.CNN_KERNEL_SIZE // 2  # Flax's "SAME" for an odd kernel
    self.conv_0 = nn.Conv1d(in_channels, features, sd_mae.CNN_KERNEL_SIZE, padding=padding)
    self.conv_1 = nn.Conv1d(features, features, sd_mae.CNN_KERNEL_SIZE, padding=padding)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    lead, (length, channels) = x.shape[:-2], x.shape[-2:]
    h = x.reshape(-1, length, channels).transpose(1, 2)
    for conv in (self.conv_0, self.conv_1):
      h = transformer_twin.tanh_gelu(conv(h))
    return h.transpose(1, 2).reshape(*lead, length, -1)


def patchify(windows: torch.Tensor, patch_size: int) -> torch.Tensor:
  """(B, W, C) -> (B, W / patch_size, patch_size, C)."""
  batch, window, channels = windows.shape
  return windows.reshape(batch, window // patch_size, patch_size, channels)


class PatchEmbedding(nn.Module):
  """Window (B, W, D) -> one token per patch (B, N, d_model), by `mode` (see sd_mae.py)."""

  def __init__(self, mode: str, patch_size: int, d_model: int, num_features: int):
    super().__init__()
    self.mode, self.patch_size = mode, patch_size
    channels = num_features
    if mode in ("cnn_first", "patch_cnn"):
      self.cnn = ConvStack(num_features, d_model)
      channels = d_model
    self.projection = nn.Linear(patch_size * channels, d_model)

  def forward(self, windows: torch.Tensor) -> torch.Tensor:
    if self.mode == "cnn_first":
      patches = patchify(self.cnn(windows), self.patch_size)
    elif self.mode == "patch_cnn":
      patches = self.cnn(patchify(windows, self.patch_size))
    else:
      patches = patchify(windows, self.patch_size)
    return self.projection(patches.flatten(start_dim=2))


class PatchDecoder(nn.Module):
  """Tokens (B, N, d_model) -> points (B, N * patch_size, num_features)."""

  def __init__(self, d_model: int, patch_size: int, num_features: int):
    super().__init__()
    self.num_features = num_features
    self.hidden = nn.Linear(d_model, d_model)
    self.output = nn.Linear(d_model, patch_size * num_features)

  def forward(self, tokens: torch.Tensor) -> torch.Tensor:
    out = self.output(transformer_twin.tanh_gelu(self.hidden(tokens)))
    return out.reshape(out.shape[0], -1, self.num_features)


class SelfDistilledMAE(nn.Module):
  """Window (B, W, D) [, mask (B, N) bool] -> {"teacher", "student": (B, W, D), "mask"}.

  Without `mask`, the last patches are hidden (the evaluation mask).
  """

  def __init__(self, spec: sd_mae.SelfDistilledMAE):
    super().__init__()
    self.patch_size = spec.patch_size
    self.scored_points = sd_mae.scored_points(spec)
    self.distill_weight = spec.distill_weight
    self.recon_weight, self.discrepancy_weight = spec.recon_weight, spec.discrepancy_weight
    self.mask_token = nn.Parameter(0.02 * torch.randn(spec.d_model))
    self.patch_embedding = PatchEmbedding(spec.patchify_mode, spec.patch_size, spec.d_model,
                                          spec.num_features)
    self.encoder = transformer_twin.encoder(
        d_model=spec.d_model, n_heads=spec.nhead, d_ff=spec.dim_feedforward,
        num_layers=spec.num_encoder_layers, dropout=spec.dropout)
    self.teacher = PatchDecoder(spec.d_model, spec.patch_size, spec.num_features)
    self.student = PatchDecoder(spec.d_model, spec.patch_size, spec.num_features)
    self.register_buffer("positions", transformer_twin.positions(spec.num_patches, spec.d_model),
                         persistent=False)
    last = np.asarray(sd_mae.last_patch_mask(spec.num_patches, spec.num_last))
    self.register_buffer("last_patches", torch.from_numpy(last), persistent=False)

  def forward(self, windows: torch.Tensor,
              mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    tokens = self.patch_embedding(windows)
    if mask is None:
      mask = self.last_patches.expand(windows.shape[0], -1)
    tokens = torch.where(mask[..., None], self.mask_token, tokens) + self.positions
    tokens = self.encoder(tokens)
    return {"teacher": self.teacher(tokens), "student": self.student(tokens), "mask": mask}


def build(model_config, *, num_features: int, window: int) -> SelfDistilledMAE:
  """The twin of `sd_mae.build(...)`; raises the same ValueError on a bad config."""
  return SelfDistilledMAE(sd_mae.build(model_config, num_features=num_features, window=window))


def entries(model_config, *, num_features: int, window: int) -> list[layouts.Entry]:
  """Every state_dict tensor <-> its Flax parameter, in state_dict order."""
  del num_features, window
  cnn = []
  if model_config.patchify_mode in ("cnn_first", "patch_cnn"):
    cnn = [entry for i in range(2) for entry in layouts.conv(
        f"patch_embedding.cnn.conv_{i}", f"patch_embedding/cnn/conv_{i}")]
  blocks = [f"blocks_{i}" for i in range(model_config.num_encoder_layers)]
  decoders = [entry for head in ("teacher", "student") for layer in ("hidden", "output")
              for entry in layouts.linear(f"{head}.{layer}", f"{head}/{layer}")]
  return [*layouts.same("mask_token", "mask_token"), *cnn,
          *layouts.linear("patch_embedding.projection", "patch_embedding/projection"),
          *transformer_twin.encoder_entries("encoder", blocks, "final_norm",
                                            n_heads=model_config.nhead),
          *decoders]


def forward(module, windows, noise):
  """The evaluation-mode outputs (the last patches hidden; nothing drawn)."""
  del noise
  return module(windows)


def masked_mean(values: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
  """Mean of (B, W, D) `values` over the points where the (B, W) bool `points` is True."""
  weights = points[..., None].to(values.dtype)
  return torch.sum(values * weights) / (torch.sum(weights) * values.shape[-1])


def loss(module, windows, noise):
  """Teacher MSE + distill_weight x discrepancy (teacher detached) on the sown training mask."""
  out = module(windows, mask=noise[0]["mask"][0])
  points = torch.repeat_interleave(out["mask"], module.patch_size, dim=-1)
  recon = masked_mean(torch.square(out["teacher"] - windows), points)
  distill = masked_mean(torch.square(out["teacher"].detach() - out["student"]), points)
  return recon + module.distill_weight * distill


def score(module, windows, noise):
  """(B, 1, D): the weighted squared error and teacher/student discrepancy at the scored points
  (`sd_mae.scored_points`), averaged over them."""
  del noise
  out = module(windows)
  points = module.scored_points
  teacher, student = out["teacher"][:, points], out["student"][:, points]
  errors = (module.recon_weight * torch.square(teacher - windows[:, points])
            + module.discrepancy_weight * torch.square(teacher - student))
  return errors.mean(dim=1, keepdim=True)
