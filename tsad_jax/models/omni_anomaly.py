"""OmniAnomaly (Su et al., KDD 2019): a stochastic recurrent VAE over the window.

qnet: a GRU reads the window x_1..W and dense layers turn its states into h_t;
the posterior of z_t depends on h_t and on the sample z_{t-1} (the stochastic
variable connection), and planar normalizing flows reshape each sample.
pnet: the prior on z_1..W is a linear Gaussian state space model (z_t = s_t +
noise, s_t = s_{t-1} + noise, unit noises, as the reference code sets it), a
GRU reads z and dense layers give a Gaussian over each x_t.

Loss: the negative ELBO, log p(x|z) + beta_kl (log p(z) - log q(z|x)), summed
over the window and averaged over the batch. Score: -log p(x_W | z) of the last
point per feature, averaged over `test_n_z` posterior samples.
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from tsad_jax.models import Hooks
from tsad_jax.models import layers

TITLE = "OmniAnomaly"
SCORING_FIELDS = ("test_n_z",)
SCORES_EVERY_POINT = False
HOOKS = Hooks()

_LOG_2PI = math.log(2.0 * math.pi)


def gaussian_log_prob(x: jax.Array, mean: jax.Array, std: jax.Array) -> jax.Array:
  """Elementwise log N(x; mean, std^2)."""
  return -0.5 * (jnp.square((x - mean) / std) + _LOG_2PI) - jnp.log(std)


def local_level_log_prob(z: jax.Array) -> jax.Array:
  """(B, W, Z) -> (B, W): log p(z_t | z_<t) under s_t = s_{t-1} + e, z_t = s_t + n.

  Every noise and the initial state are N(0, 1) and every z dimension is an
  independent scalar model, so the Kalman filter's variances do not depend on
  the data; its predicted means do.
  """
  def step(carry, z_t):
    mean, var = carry  # predicted state
    obs_var = var + 1.0
    log_prob = gaussian_log_prob(z_t, mean, jnp.sqrt(obs_var))
    gain = var / obs_var
    mean = mean + gain * (z_t - mean)
    var = (1.0 - gain) * var + 1.0  # update, then predict one step ahead
    return (mean, var), log_prob

  init = (jnp.zeros_like(z[:, 0]), jnp.ones_like(z[:, 0]))
  _, log_probs = jax.lax.scan(step, init, jnp.swapaxes(z, 0, 1))
  return jnp.swapaxes(log_probs, 0, 1).sum(-1)


class PlanarFlow(nn.Module):
  """f(z) = z + u' tanh(w.z + b), with u' constrained so that f is invertible."""

  @nn.compact
  def __call__(self, z: jax.Array) -> tuple[jax.Array, jax.Array]:
    dim = z.shape[-1]
    init = nn.initializers.normal(0.01)
    u = self.param("u", init, (dim,))
    w = self.param("w", init, (dim,))
    b = self.param("b", nn.initializers.zeros, ())
    w_dot_u = jnp.dot(w, u)
    u_hat = u + (nn.softplus(w_dot_u) - 1.0 - w_dot_u) * w / (jnp.dot(w, w) + 1e-12)
    activation = jnp.tanh(z @ w + b)
    psi = (1.0 - jnp.square(activation))[..., None] * w
    log_det = jnp.log(jnp.abs(1.0 + psi @ u_hat) + 1e-12)
    return z + activation[..., None] * u_hat, log_det


class _FlowStep(nn.Module):
  """One planar flow as a scan step: carries (z, summed log-determinant)."""

  @nn.compact
  def __call__(self, carry, _):
    z, log_det_sum = carry
    z, log_det = PlanarFlow(name="flow")(z)
    return (z, log_det_sum + log_det), None


class PlanarFlows(nn.Module):
  """`layers` planar flows in sequence; parameters stacked on a leading axis.

  A scan compiles one flow instead of `layers` (XLA's CPU compile time grows
  with every unrolled layer).
  """

  layers: int

  @nn.compact
  def __call__(self, z: jax.Array) -> tuple[jax.Array, jax.Array]:
    log_det = jnp.zeros(z.shape[:-1], z.dtype)
    if self.layers == 0:
      return z, log_det
    stack = nn.scan(_FlowStep, variable_axes={"params": 0}, split_rngs={"params": True},
                    length=self.layers)
    (z, log_det), _ = stack(name="stack")((z, log_det), None)
    return z, log_det


class RecurrentHidden(nn.Module):
  """GRU over time, then `dense_layers` ReLU dense layers at every step."""

  rnn_hidden: int
  dense_dim: int
  dense_layers: int = 2

  @nn.compact
  def __call__(self, inputs: jax.Array) -> jax.Array:
    h = nn.RNN(layers.GRUCell(self.rnn_hidden, name="cell"), name="gru")(inputs)
    for i in range(self.dense_layers):
      h = nn.relu(nn.Dense(self.dense_dim, name=f"dense_{i}")(h))
    return h


class GaussianHead(nn.Module):
  """h -> (mean, std) with std = softplus(.) + std_epsilon."""

  features: int
  std_epsilon: float

  @nn.compact
  def __call__(self, h: jax.Array) -> tuple[jax.Array, jax.Array]:
    mean = nn.Dense(self.features, name="mean")(h)
    std = nn.softplus(nn.Dense(self.features, name="std")(h)) + self.std_epsilon
    return mean, std


class OmniAnomaly(nn.Module):
  """Window (B, W, D) -> dict of the pieces of the ELBO for that window."""

  num_features: int
  z_dim: int
  rnn_hidden: int
  dense_dim: int
  nf_layers: int
  connected_z_q: bool
  connected_z_p: bool
  std_epsilon: float
  beta_kl: float  # read by `loss`
  test_n_z: int  # read by `score`

  def setup(self):
    self.q_hidden = RecurrentHidden(self.rnn_hidden, self.dense_dim)
    # The posterior's layers act on concat(h_t, z_{t-1}). They are kept as an h
    # part, applied to all steps at once, and a z part used inside the scan.
    self.q_mean_from_h = nn.Dense(self.z_dim)
    self.q_std_from_h = nn.Dense(self.z_dim)
    kernel_init = nn.initializers.lecun_normal()
    self.q_mean_from_z = self.param("q_mean_from_z", kernel_init, (self.z_dim, self.z_dim))
    self.q_std_from_z = self.param("q_std_from_z", kernel_init, (self.z_dim, self.z_dim))
    self.flows = PlanarFlows(self.nf_layers)
    self.p_hidden = RecurrentHidden(self.rnn_hidden, self.dense_dim)
    self.p_x = GaussianHead(self.num_features, self.std_epsilon)

  def _posterior(self, h: jax.Array, noise: jax.Array):
    """Samples z_1..W one step at a time: (z, log q(z)) of shapes (B, W, Z), (B, W)."""
    def step(z_prev, inputs):
      mean_t, std_t, noise_t = inputs
      if self.connected_z_q:
        mean_t = mean_t + z_prev @ self.q_mean_from_z
        std_t = std_t + z_prev @ self.q_std_from_z
      std_t = nn.softplus(std_t) + self.std_epsilon
      z_t = mean_t + std_t * noise_t
      return z_t, (z_t, gaussian_log_prob(z_t, mean_t, std_t).sum(-1))

    inputs = (self.q_mean_from_h(h), self.q_std_from_h(h), noise)
    inputs = tuple(jnp.swapaxes(a, 0, 1) for a in inputs)
    _, (z, log_q) = jax.lax.scan(step, jnp.zeros_like(noise[:, 0]), inputs)
    return jnp.swapaxes(z, 0, 1), jnp.swapaxes(log_q, 0, 1)

  def draw_noise(self, windows: jax.Array) -> jax.Array:
    """The posterior's standard normal draws for (B, W, D) windows: (B, W, Z)."""
    batch, window, _ = windows.shape
    return jax.random.normal(self.make_rng("sample"), (batch, window, self.z_dim))

  def __call__(self, windows: jax.Array, *, train: bool = False,
               noise: jax.Array | None = None) -> dict:
    """The ELBO's pieces; `noise` (B, W, Z) replaces the draw from the "sample" rng."""
    del train  # the model has no dropout; sampling happens in training and scoring
    h = self.q_hidden(windows)
    noise = self.draw_noise(windows) if noise is None else noise
    self.sow("noise", "eps", noise)  # for a PyTorch twin (interop/noise.py)
    z, log_q = self._posterior(h, noise)
    z, log_det = self.flows(z)
    log_q = log_q - log_det
    if self.connected_z_p:
      log_p_z = local_level_log_prob(z)
    else:
      log_p_z = gaussian_log_prob(z, 0.0, 1.0).sum(-1)
    x_mean, x_std = self.p_x(self.p_hidden(z))
    return {"x_mean": x_mean, "x_std": x_std, "log_q_z": log_q, "log_p_z": log_p_z}


_POSITIVE = ("z_dim", "rnn_hidden", "dense_dim", "test_n_z")


def defaults() -> ml_collections.ConfigDict:
  """The `config.model` section: OmniAnomaly's defaults.

  The reference code's names: z_dim, rnn_num_hidden (rnn_hidden), dense_dim,
  nf_layers, test_n_z; the seed pipeline's --d_model is rnn_hidden, --d_ff
  dense_dim and --latent_dim z_dim.
  """
  model = ml_collections.ConfigDict()
  model.name = "omni_anomaly"
  model.z_dim = 3
  # The paper's 500 and 500 train at ~10 windows/s on 2 CPU cores, the seed's 128
  # and 256 at ~110 (batch 64); 64 and 128 at ~220 fit a CPU benchmark.
  model.rnn_hidden = 64
  model.dense_dim = 128
  model.nf_layers = 20  # planar flows on the posterior; 0: none
  model.connected_z_q = True  # posterior z_t depends on z_{t-1}
  model.connected_z_p = True  # linear Gaussian state space prior; False: N(0, I)
  model.std_epsilon = 1e-4
  model.beta_kl = 1.0
  model.test_n_z = 1  # posterior samples averaged in the score
  return model


def build(model_config: ml_collections.ConfigDict, *, num_features: int, window: int):
  del window
  for field in _POSITIVE:
    if model_config[field] < 1:
      raise ValueError(f"config.model.{field} must be >= 1, got {model_config[field]}.")
  if model_config.nf_layers < 0:
    raise ValueError(f"config.model.nf_layers must be >= 0, got {model_config.nf_layers}.")
  if model_config.beta_kl < 0:
    raise ValueError(f"config.model.beta_kl must be >= 0, got {model_config.beta_kl}.")
  return OmniAnomaly(
      num_features=num_features,
      z_dim=model_config.z_dim,
      rnn_hidden=model_config.rnn_hidden,
      dense_dim=model_config.dense_dim,
      nf_layers=model_config.nf_layers,
      connected_z_q=model_config.connected_z_q,
      connected_z_p=model_config.connected_z_p,
      std_epsilon=model_config.std_epsilon,
      beta_kl=model_config.beta_kl,
      test_n_z=model_config.test_n_z)


def loss(model, params, windows, *, rng, train):
  out = model.apply({"params": params}, windows, train=train, rngs={"sample": rng})
  log_p_x = gaussian_log_prob(windows, out["x_mean"], out["x_std"]).sum((1, 2))
  kl = (out["log_q_z"] - out["log_p_z"]).sum(1)
  return -jnp.mean(log_p_x - model.beta_kl * kl), {"log_p_x": jnp.mean(log_p_x), "kl": jnp.mean(kl)}


def score(model, params, windows, *, rng):
  """-log p(x_W | z) of the last point per feature, (B, 1, D), averaged over test_n_z draws.

  The draws are those of one apply per key of split(rng, test_n_z); the
  samples then run as one batch, a single apply.
  """
  draw = lambda key: model.apply({"params": params}, windows, rngs={"sample": key},
                                 method=OmniAnomaly.draw_noise)
  noise = jax.vmap(draw)(jax.random.split(rng, model.test_n_z))  # (test_n_z, B, W, Z)
  samples, batch = noise.shape[:2]
  tiled = jnp.tile(windows, (samples, 1, 1))
  out = model.apply({"params": params}, tiled, noise=noise.reshape(-1, *noise.shape[2:]))
  log_probs = gaussian_log_prob(tiled[:, -1], out["x_mean"][:, -1], out["x_std"][:, -1])
  return -jnp.mean(log_probs.reshape(samples, batch, -1), axis=0)[:, None, :]
