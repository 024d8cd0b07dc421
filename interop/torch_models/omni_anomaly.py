"""PyTorch twin of tsad_jax/models/omni_anomaly.py.

The reference implementation is TensorFlow, so there is no public PyTorch
layout; the state_dict keys follow the Flax module names:
  q_mean_from_z, q_std_from_z       (Z, Z), applied as z_{t-1} @ W (Flax's layout)
  q_hidden.gru.*                    nn.GRU(D, rnn_hidden)   <-> q_hidden/cell
  q_hidden.dense_0.*, .dense_1.*    nn.Linear               <-> q_hidden/dense_i
  q_mean_from_h.*, q_std_from_h.*   nn.Linear(dense_dim, Z)
  flows.u, flows.w (F, Z), flows.b (F,): the F planar flows stacked, as Flax's
                                    scan keeps them (no flows key when F = 0)
  p_hidden.gru.*, p_hidden.dense_i.*  as q_hidden, reading z
  p_x.mean.*, p_x.std.*             nn.Linear(dense_dim, D)
The posterior's Gaussian draws are the Flax model's (sown as "eps").
"""

import math

import torch
from torch import nn
from torch.nn import functional

from interop import layouts
from tsad_jax.models import omni_anomaly as flax_omni

_DENSE_LAYERS = flax_omni.RecurrentHidden.dense_layers


def gaussian_log_prob(x, mean, std):
  """Elementwise log N(x; mean, std^2)."""
  return -0.5 * (torch.square((x - mean) / std) + math.log(2.0 * math.pi)) - torch.log(std)


def local_level_log_prob(z):
  """(B, W, Z) -> (B, W): log p(z_t | z_<t) under the local level prior (Kalman filter)."""
  mean, var = torch.zeros_like(z[:, 0]), torch.ones_like(z[:, 0])
  log_probs = []
  for t in range(z.shape[1]):
    obs_var = var + 1.0
    log_probs.append(gaussian_log_prob(z[:, t], mean, torch.sqrt(obs_var)))
    gain = var / obs_var
    mean = mean + gain * (z[:, t] - mean)
    var = (1.0 - gain) * var + 1.0
  return torch.stack(log_probs, dim=1).sum(-1)


class RecurrentHidden(nn.Module):
  """GRU over time, then ReLU dense layers at every step."""

  def __init__(self, inputs: int, rnn_hidden: int, dense_dim: int):
    super().__init__()
    self.gru = nn.GRU(inputs, rnn_hidden, batch_first=True)
    for i in range(_DENSE_LAYERS):
      self.add_module(f"dense_{i}", nn.Linear(rnn_hidden if i == 0 else dense_dim, dense_dim))

  def forward(self, inputs):
    h, _ = self.gru(inputs)
    for i in range(_DENSE_LAYERS):
      h = torch.relu(getattr(self, f"dense_{i}")(h))
    return h


class PlanarFlows(nn.Module):
  """F planar flows f(z) = z + u' tanh(w.z + b), parameters stacked on the first axis."""

  def __init__(self, layers: int, z_dim: int):
    super().__init__()
    self.u = nn.Parameter(0.01 * torch.randn(layers, z_dim))
    self.w = nn.Parameter(0.01 * torch.randn(layers, z_dim))
    self.b = nn.Parameter(torch.zeros(layers))

  def forward(self, z):
    """(z after the flows, summed log-determinant (B, W))."""
    log_det_sum = torch.zeros(z.shape[:-1])
    for u, w, b in zip(self.u, self.w, self.b, strict=True):
      w_dot_u = torch.dot(w, u)
      u_hat = u + (functional.softplus(w_dot_u) - 1.0 - w_dot_u) * w / (torch.dot(w, w) + 1e-12)
      activation = torch.tanh(z @ w + b)
      psi = (1.0 - torch.square(activation))[..., None] * w
      log_det_sum = log_det_sum + torch.log(torch.abs(1.0 + psi @ u_hat) + 1e-12)
      z = z + activation[..., None] * u_hat
    return z, log_det_sum


class GaussianHead(nn.Module):
  """h -> (mean, std) with std = softplus(.) + std_epsilon."""

  def __init__(self, inputs: int, features: int, std_epsilon: float):
    super().__init__()
    self.std_epsilon = std_epsilon
    self.mean = nn.Linear(inputs, features)
    self.std = nn.Linear(inputs, features)

  def forward(self, h):
    return self.mean(h), functional.softplus(self.std(h)) + self.std_epsilon


class OmniAnomaly(nn.Module):
  """Window (B, W, D) and posterior draws (B, W, Z) -> dict of the ELBO's pieces."""

  def __init__(self, model: flax_omni.OmniAnomaly):
    super().__init__()
    z_dim, self.model = model.z_dim, model
    init = lambda: nn.Parameter(torch.randn(z_dim, z_dim) / math.sqrt(z_dim))  # LeCun normal
    self.q_mean_from_z, self.q_std_from_z = init(), init()
    self.q_hidden = RecurrentHidden(model.num_features, model.rnn_hidden, model.dense_dim)
    self.q_mean_from_h = nn.Linear(model.dense_dim, z_dim)
    self.q_std_from_h = nn.Linear(model.dense_dim, z_dim)
    if model.nf_layers:
      self.flows = PlanarFlows(model.nf_layers, z_dim)
    self.p_hidden = RecurrentHidden(z_dim, model.rnn_hidden, model.dense_dim)
    self.p_x = GaussianHead(model.dense_dim, model.num_features, model.std_epsilon)

  def _posterior(self, h, eps):
    """z_1..W sampled one step at a time: (z (B, W, Z), log q(z) (B, W))."""
    means, stds = self.q_mean_from_h(h), self.q_std_from_h(h)
    z_t, zs, log_qs = torch.zeros_like(eps[:, 0]), [], []
    for t in range(eps.shape[1]):
      mean_t, std_t = means[:, t], stds[:, t]
      if self.model.connected_z_q:
        mean_t, std_t = mean_t + z_t @ self.q_mean_from_z, std_t + z_t @ self.q_std_from_z
      std_t = functional.softplus(std_t) + self.model.std_epsilon
      z_t = mean_t + std_t * eps[:, t]
      zs.append(z_t)
      log_qs.append(gaussian_log_prob(z_t, mean_t, std_t).sum(-1))
    return torch.stack(zs, dim=1), torch.stack(log_qs, dim=1)

  def forward(self, windows, eps):
    z, log_q = self._posterior(self.q_hidden(windows), eps)
    if self.model.nf_layers:
      z, log_det = self.flows(z)
      log_q = log_q - log_det
    if self.model.connected_z_p:
      log_p_z = local_level_log_prob(z)
    else:
      log_p_z = gaussian_log_prob(z, torch.zeros(()), torch.ones(())).sum(-1)
    x_mean, x_std = self.p_x(self.p_hidden(z))
    return {"x_mean": x_mean, "x_std": x_std, "log_q_z": log_q, "log_p_z": log_p_z}


def build(model_config, *, num_features: int, window: int) -> nn.Module:
  return OmniAnomaly(flax_omni.build(model_config, num_features=num_features, window=window))


def _recurrent_hidden(prefix: str) -> list[layouts.Entry]:
  return [*layouts.rnn_layer(f"{prefix}.gru", 0, f"{prefix}/cell"),
          *(e for i in range(_DENSE_LAYERS)
            for e in layouts.linear(f"{prefix}.dense_{i}", f"{prefix}/dense_{i}"))]


def entries(model_config, *, num_features: int, window: int) -> list[layouts.Entry]:
  del num_features, window
  flows = [e for name in ("u", "w", "b")
           for e in layouts.same(f"flows.{name}", f"flows/stack/flow/{name}")]
  return [*layouts.same("q_mean_from_z", "q_mean_from_z"),
          *layouts.same("q_std_from_z", "q_std_from_z"),
          *_recurrent_hidden("q_hidden"),
          *layouts.linear("q_mean_from_h", "q_mean_from_h"),
          *layouts.linear("q_std_from_h", "q_std_from_h"),
          *(flows if model_config.nf_layers else []),
          *_recurrent_hidden("p_hidden"),
          *layouts.linear("p_x.mean", "p_x/mean"),
          *layouts.linear("p_x.std", "p_x/std")]


def _eps(noise):
  """The posterior draws of the one apply that sowed them."""
  (eps,) = [call["eps"][0] for call in noise if "eps" in call]
  return eps


def forward(module, windows, noise):
  return module(windows, _eps(noise))


def loss(module, windows, noise):
  """The negative ELBO, summed over the window and averaged over the batch."""
  out = module(windows, _eps(noise))
  log_p_x = gaussian_log_prob(windows, out["x_mean"], out["x_std"]).sum((1, 2))
  kl = (out["log_q_z"] - out["log_p_z"]).sum(1)
  return -torch.mean(log_p_x - module.model.beta_kl * kl)


def score(module, windows, noise):
  """-log p(x_W | z) of the last point, (B, 1, D), averaged over the posterior samples.

  The Flax score runs its test_n_z samples as one batch: the windows repeated,
  sample after sample.
  """
  eps = _eps(noise)
  samples = len(eps) // len(windows)
  tiled = windows.repeat(samples, 1, 1)
  out = module(tiled, eps)
  log_probs = gaussian_log_prob(tiled[:, -1], out["x_mean"][:, -1], out["x_std"][:, -1])
  return -log_probs.reshape(samples, len(windows), -1).mean(0)[:, None, :]
