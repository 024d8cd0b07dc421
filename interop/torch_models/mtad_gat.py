"""PyTorch twin of tsad_jax/models/mtad_gat.py, in the layout of ML4ITS/mtad-gat-pytorch.

With `recon_head='gru'` the state_dict is that of the public port's
`MTAD_GAT(n_features, window_size=data.window - 1, out_dim=len(target_dims),
kernel_size, feat_gat_embed_dim, time_gat_embed_dim, use_gatv2, gru_n_layers,
gru_hid_dim, forecast_n_layers=fc_n_layers, forecast_hid_dim=fc_hid_dim,
recon_n_layers, recon_hid_dim, dropout, alpha)` (an embed dim of 0 here is the
port's None), so a checkpoint saved from it loads:

  conv.conv.{weight,bias}                           Conv1d(D, D, kernel_size)
  feature_gat.a, .bias, .lin.{weight,bias}          attention over the D features
  temporal_gat.a, .bias, .lin.{weight,bias}         attention over the L timestamps
  gru.gru.{weight,bias}_{ih,hh}_l{k}                nn.GRU(3D, gru_hid_dim)
  forecasting_model.layers.{i}.{weight,bias}        fc_n_layers + 1 Linear layers
  recon_model.decoder.rnn.{weight,bias}_{ih,hh}_l{k} nn.GRU(gru_hid_dim, recon_hid_dim)
  recon_model.fc.{weight,bias}                      Linear(recon_hid_dim, T)

`recon_head='vae'` (not in the port) has, under recon_model, z_mean and
z_log_std (Linear(gru_hid_dim, vae_latent_dim)) and a decoder laid out as the
port's reconstruction model (decoder.decoder.rnn.*, decoder.fc.*) reading z.
A head the run mode does not use has no tensors, as in Flax (the port always
has both).
"""

import math

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from interop import layouts
from tsad_jax.models import mtad_gat

_LOG_2PI = math.log(2.0 * math.pi)


def _holder(name: str, module: nn.Module) -> nn.ModuleDict:
  """`module` under the attribute `name`: the port's one-layer wrappers (conv.conv, gru.gru)."""
  return nn.ModuleDict({name: module})


def _gru(in_dim: int, hidden: int, num_layers: int, dropout: float) -> nn.GRU:
  """The port's nn.GRU: batch first, dropout between layers only."""
  return nn.GRU(in_dim, hidden, num_layers, batch_first=True,
                dropout=dropout if num_layers > 1 else 0.0)


class GraphAttention(nn.Module):
  """The port's Feature/TemporalAttentionLayer over (B, N, F) nodes: (B, N, F) out."""

  def __init__(self, num_nodes: int, width: int, embed_dim: int, *, use_gatv2: bool,
               alpha: float, dropout: float):
    super().__init__()
    self.use_gatv2, self.alpha, self.dropout, self.width = use_gatv2, alpha, dropout, width
    self.embed_dim = embed_dim
    a_width = embed_dim if use_gatv2 else 2 * embed_dim
    self.a = nn.Parameter(nn.init.xavier_uniform_(torch.empty(a_width, 1), gain=1.414))
    self.bias = nn.Parameter(torch.zeros(num_nodes, num_nodes))
    self.lin = nn.Linear(2 * width if use_gatv2 else width, embed_dim)

  def scores(self, nodes: torch.Tensor) -> torch.Tensor:
    """(B, N, N) e_ij, before the bias; W [v_i ; v_j] as W_1 v_i + W_2 v_j."""
    a = self.a[:, 0]
    if self.use_gatv2:
      weight = self.lin.weight
      source = nodes @ weight[:, :self.width].T + self.lin.bias
      target = nodes @ weight[:, self.width:].T
      return F.leaky_relu(source[:, :, None] + target[:, None], self.alpha) @ a
    embedded = self.lin(nodes)
    source, target = embedded @ a[:self.embed_dim], embedded @ a[self.embed_dim:]
    return F.leaky_relu(source[:, :, None] + target[:, None], self.alpha)

  def forward(self, nodes: torch.Tensor) -> torch.Tensor:
    attention = torch.softmax(self.scores(nodes) + self.bias, dim=-1)
    attention = F.dropout(attention, self.dropout, self.training)
    return torch.sigmoid(attention @ nodes)


class Forecaster(nn.Module):
  """The port's Forecasting_Model: ReLU Linear layers, then a Linear map to the targets."""

  def __init__(self, in_dim: int, hidden: int, out_dim: int, num_layers: int, dropout: float):
    super().__init__()
    ins, outs = [in_dim] + [hidden] * num_layers, [hidden] * num_layers + [out_dim]
    self.layers = nn.ModuleList([nn.Linear(i, o) for i, o in zip(ins, outs, strict=True)])
    self.dropout = nn.Dropout(dropout)

  def forward(self, h: torch.Tensor) -> torch.Tensor:
    for layer in self.layers[:-1]:
      h = self.dropout(torch.relu(layer(h)))
    return self.layers[-1](h)


class Reconstructor(nn.Module):
  """The port's ReconstructionModel: (B, H) spread over `length` steps, a GRU, a Linear map.

  `interleave`: the port's repeat_interleave-then-view spreading (GRUReconstructor's).
  """

  def __init__(self, length: int, in_dim: int, hidden: int, out_dim: int, num_layers: int,
               dropout: float, *, interleave: bool = True):
    super().__init__()
    self.length, self.interleave = length, interleave
    self.decoder = _holder("rnn", _gru(in_dim, hidden, num_layers, dropout))
    self.fc = nn.Linear(hidden, out_dim)

  def forward(self, h: torch.Tensor) -> torch.Tensor:
    if self.interleave:
      steps = h.repeat_interleave(self.length, dim=1).view(h.shape[0], self.length, -1)
    else:
      steps = h[:, None].expand(-1, self.length, -1)
    decoded, _ = self.decoder["rnn"](steps)
    return self.fc(decoded)


class VAEReconstructor(nn.Module):
  """Gaussian q(z | h), a Reconstructor of z giving (mean, std) of p(x | z), and the KL term."""

  def __init__(self, spec: mtad_gat.MTADGAT, length: int, targets: int):
    super().__init__()
    self.z_mean = nn.Linear(spec.gru_hid_dim, spec.vae_latent_dim)
    self.z_log_std = nn.Linear(spec.gru_hid_dim, spec.vae_latent_dim)
    self.decoder = Reconstructor(length, spec.vae_latent_dim, spec.recon_hid_dim, 2 * targets,
                                 spec.recon_n_layers, spec.dropout, interleave=False)

  def forward(self, h: torch.Tensor, eps: torch.Tensor | None = None):
    mean, log_std = self.z_mean(h), self.z_log_std(h)
    z = mean if eps is None else mean + torch.exp(log_std) * eps
    kl = 0.5 * torch.sum(mean.square() + torch.exp(2 * log_std) - 1.0 - 2 * log_std, dim=-1)
    x_mean, raw_std = self.decoder(z).chunk(2, dim=-1)
    return x_mean, F.softplus(raw_std) + 1e-4, kl


class MTADGAT(nn.Module):
  """Lookback (B, L, D) -> {"forecast": (B, T), "recon": ...}, as the Flax MTADGAT."""

  def __init__(self, spec: mtad_gat.MTADGAT):
    super().__init__()
    self.spec = spec
    features, length, targets = spec.num_features, spec.lookback, len(spec.target_dims)
    feature_embed, time_embed = spec.gat_embed_dims()
    attention = dict(use_gatv2=spec.use_gatv2, alpha=spec.alpha, dropout=spec.dropout)
    self.conv = _holder("conv", nn.Conv1d(features, features, spec.kernel_size))
    self.feature_gat = GraphAttention(features, length, feature_embed, **attention)
    self.temporal_gat = GraphAttention(length, features, time_embed, **attention)
    self.gru = _holder("gru", _gru(3 * features, spec.gru_hid_dim, spec.gru_n_layers,
                                   spec.dropout))
    if spec.run_mode in ("FORECASTING", "BOTH"):
      self.forecasting_model = Forecaster(spec.gru_hid_dim, spec.fc_hid_dim, targets,
                                          spec.fc_n_layers, spec.dropout)
    if spec.run_mode in ("RECONSTRUCTING", "BOTH"):
      if spec.recon_head == "vae":
        self.recon_model = VAEReconstructor(spec, length, targets)
      else:
        self.recon_model = Reconstructor(length, spec.gru_hid_dim, spec.recon_hid_dim, targets,
                                         spec.recon_n_layers, spec.dropout)

  def forward(self, lookback: torch.Tensor, *, eps: torch.Tensor | None = None,
              heads: tuple[str, ...] = ("forecast", "recon")) -> dict:
    """`eps`: the VAE's standard normal draw (training); None: z is the posterior mean."""
    pad = (self.spec.kernel_size - 1) // 2
    x = torch.relu(self.conv["conv"](F.pad(lookback.transpose(1, 2), (pad, pad))))
    time_major = x.transpose(1, 2)
    joined = torch.cat([time_major, self.feature_gat(x).transpose(1, 2),
                        self.temporal_gat(time_major)], dim=-1)
    _, state = self.gru["gru"](joined)
    state = state[-1]
    out = {}
    if hasattr(self, "forecasting_model") and "forecast" in heads:
      out["forecast"] = self.forecasting_model(state)
    if hasattr(self, "recon_model") and "recon" in heads:
      vae = self.spec.recon_head == "vae"
      out["recon"] = self.recon_model(state, eps) if vae else self.recon_model(state)
    return out


def build(model_config, *, num_features: int, window: int) -> MTADGAT:
  """The twin of `mtad_gat.build(...)`; raises the same ValueError on a bad config."""
  return MTADGAT(mtad_gat.build(model_config, num_features=num_features, window=window))


def _gru_entries(prefix: str, flax_path: str, num_layers: int) -> list[layouts.Entry]:
  return [entry for k in range(num_layers)
          for entry in layouts.rnn_layer(prefix, k, f"{flax_path}/cell_{k}")]


def _reconstructor_entries(prefix: str, flax_path: str, num_layers: int) -> list[layouts.Entry]:
  return [*_gru_entries(f"{prefix}.decoder.rnn", f"{flax_path}/decoder", num_layers),
          *layouts.linear(f"{prefix}.fc", f"{flax_path}/fc")]


def _attention_entries(name: str) -> list[layouts.Entry]:
  return [*layouts.same(f"{name}.a", f"{name}/a"), *layouts.same(f"{name}.bias", f"{name}/bias"),
          *layouts.linear(f"{name}.lin", f"{name}/lin")]


def entries(model_config, *, num_features: int, window: int) -> list[layouts.Entry]:
  """Every state_dict tensor <-> its Flax parameter, in state_dict order."""
  spec = mtad_gat.build(model_config, num_features=num_features, window=window)
  out = [*layouts.conv("conv.conv", "conv"), *_attention_entries("feature_gat"),
         *_attention_entries("temporal_gat"), *_gru_entries("gru.gru", "gru", spec.gru_n_layers)]
  if spec.run_mode in ("FORECASTING", "BOTH"):
    out += [entry for i in range(spec.fc_n_layers + 1) for entry in layouts.linear(
        f"forecasting_model.layers.{i}", f"forecasting_model/layers_{i}")]
  if spec.run_mode in ("RECONSTRUCTING", "BOTH"):
    if spec.recon_head == "vae":
      out += [*layouts.linear("recon_model.z_mean", "recon_model/z_mean"),
              *layouts.linear("recon_model.z_log_std", "recon_model/z_log_std"),
              *_reconstructor_entries("recon_model.decoder", "recon_model/decoder",
                                      spec.recon_n_layers)]
    else:
      out += _reconstructor_entries("recon_model", "recon_model", spec.recon_n_layers)
  return out


def forward(module: MTADGAT, windows, noise):
  """The heads' outputs on the lookback, as the Flax model's apply (train=False)."""
  del noise
  return module(windows)


def _targets(module: MTADGAT, x: torch.Tensor) -> torch.Tensor:
  return x[..., list(module.spec.target_dims)]


def _gaussian_nll(x, mean, std):
  return 0.5 * (((x - mean) / std).square() + _LOG_2PI) + torch.log(std)


def _eps(noise) -> torch.Tensor | None:
  """The VAE's draw in the loss's one apply, if it made one."""
  sown = noise[0].get("recon_model", {}).get("eps") if noise else None
  return sown[0] if sown else None


def loss(module: MTADGAT, windows, noise):
  """Forecast RMSE + reconstruction RMSE (VAE: NLL + KL per element), as mtad_gat.loss."""
  lookback, last = windows[:, :-1], windows[:, -1]
  out = module(lookback, eps=_eps(noise))
  total = 0.0
  if "forecast" in out:
    total = total + torch.sqrt(torch.mean((out["forecast"] - _targets(module, last)).square()))
  if "recon" in out:
    x = _targets(module, lookback)
    if module.spec.recon_head == "vae":
      mean, std, kl = out["recon"]
      total = total + torch.mean(_gaussian_nll(x, mean, std)) + torch.mean(kl) / x[0].numel()
    else:
      total = total + torch.sqrt(torch.mean((out["recon"] - x).square()))
  return total


def _scatter(module: MTADGAT, values: torch.Tensor) -> torch.Tensor:
  """(B, T) target-feature values into (B, D), zeros elsewhere."""
  full = values.new_zeros(values.shape[:-1] + (module.spec.num_features,))
  full[..., list(module.spec.target_dims)] = values
  return full


def score_parts(module: MTADGAT, windows, noise):
  """(B, 1, 2, D) forecast and reconstruction parts of the last point's score."""
  del noise
  spec = module.spec
  last = _targets(module, windows[:, -1])
  forecast = recon = torch.zeros_like(last)
  if spec.run_mode in ("FORECASTING", "BOTH"):
    forecast = (module(windows[:, :-1], heads=("forecast",))["forecast"] - last).square()
  if spec.run_mode in ("RECONSTRUCTING", "BOTH"):
    shifted = module(windows[:, 1:], heads=("recon",))["recon"]
    if spec.recon_head == "vae":
      mean, std, _ = shifted
      recon = _gaussian_nll(last, mean[:, -1], std[:, -1])
    else:
      recon = (shifted[:, -1] - last).square()
  return torch.stack([_scatter(module, forecast), _scatter(module, recon)], dim=1)[:, None]


def score(module: MTADGAT, windows, noise):
  """(B, 1, D): the parts mixed by run mode and gamma (mtad_gat.score)."""
  parts = score_parts(module, windows, noise)
  spec = module.spec
  return mtad_gat.mix_parts(parts[..., 0, :], parts[..., 1, :], run_mode=spec.run_mode,
                            gamma=spec.gamma)
