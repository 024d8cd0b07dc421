"""MTAD-GAT (Zhao et al., ICDM 2020): graph attention over features and over time.

A window of W points is split into the lookback x (the first W-1 points) and
the point to forecast y (the last). A 1-D convolution (kernel 7) smooths x
over time; a feature-oriented graph attention layer (nodes = features, each a
length-(W-1) series) and a time-oriented one (nodes = timestamps, each a
D-vector) mix it; the input and both outputs are concatenated per timestamp
and read by a GRU. Its last state feeds a forecasting MLP (the next point) and
a reconstruction head: a GRU decoder of the lookback (`recon_head='gru'`, the
public PyTorch port ML4ITS/mtad-gat-pytorch), or a VAE with a Gaussian decoder
(`recon_head='vae'`, the paper). The GRU head computes the port's function:
its parameters load from the port's state_dict (interop/torch_models/mtad_gat.py).

Losses (by `run_mode`): RMSE of the forecast, and RMSE of the reconstruction
(or, for the VAE, its negative log-likelihood plus the KL term).

Scores: for the last point x_t of each window and every target feature i,
the forecast part f_i = (x̂_t,i - x_t,i)^2 from the lookback, and the
reconstruction part r_i: the squared error of x_t,i in the reconstruction of
the window ending at t (the GRU head), or -log p(x_t,i) (the VAE). Per
feature, (f_i + gamma r_i) / (1 + gamma); with `scale_scores` each part is
first min-max scaled per feature by its range on the training series.
Features outside `target_dims` score 0.

Graph attention, as the paper with GATv2 (Brody et al.) as an option: for
nodes v_i, v_j, GAT scores e_ij = LeakyReLU(a . [W v_i ; W v_j]) and GATv2
e_ij = a . LeakyReLU(W [v_i ; v_j]); a learnt bias b_ij is added, attention is
the softmax over j, and the output is sigmoid(sum_j alpha_ij v_j). W [v_i ; v_j]
is computed as W_1 v_i + W_2 v_j, never by building the (N, N, 2F) pairs. As in
the port, W's width is the given embed dim (default: the node width F), doubled
with GATv2.
"""

import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from tsad_jax.models import Hooks
from tsad_jax.models import layers

TITLE = "MTAD-GAT"
SCORING_FIELDS = ("gamma", "scale_scores")
SCORES_EVERY_POINT = False
RUN_MODES = ("FORECASTING", "RECONSTRUCTING", "BOTH")
RECON_HEADS = ("gru", "vae")
_LOG_2PI = math.log(2.0 * math.pi)

_kernel_init = nn.initializers.lecun_normal()
_zeros = nn.initializers.zeros


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def gatv2_scores(source: jax.Array, target: jax.Array, a: jax.Array,
                 slope: float) -> jax.Array:
  """e_ij = sum_k a_k LeakyReLU(source_ik + target_jk): (..., N, E) twice -> (..., N, N).

  Loops over k with one (..., N, N) slice live at a time, forward and backward
  (a hand-written VJP). On CPU, XLA runs the broadcast-then-reduce form, with its
  (..., N, N, E) intermediate, about 10x slower, and autodiff of the loop stores
  every slice.
  """
  return _gatv2_forward(source, target, a, slope)[0]


def _gatv2_forward(source, target, a, slope):
  source_k, target_k = jnp.moveaxis(source, -1, 0), jnp.moveaxis(target, -1, 0)

  def add_channel(total, channel):
    s, t, a_k = channel
    return total + a_k * nn.leaky_relu(s[..., :, None] + t[..., None, :], slope), None

  total = jnp.zeros(source.shape[:-1] + source.shape[-2:-1], source.dtype)
  total, _ = jax.lax.scan(add_channel, total, (source_k, target_k, a))
  return total, (source_k, target_k, a)


def _gatv2_backward(slope, residuals, grad):
  source_k, target_k, a = residuals

  def channel_grads(_, channel):
    s, t, a_k = channel
    pair = s[..., :, None] + t[..., None, :]
    grad_pre = grad * jnp.where(pair > 0, 1.0, slope)  # dLeakyReLU(x)/dx, times the upstream
    return None, (a_k * grad_pre.sum(-1), a_k * grad_pre.sum(-2), jnp.sum(grad_pre * pair))

  _, (d_source, d_target, d_a) = jax.lax.scan(channel_grads, None, (source_k, target_k, a))
  return jnp.moveaxis(d_source, 0, -1), jnp.moveaxis(d_target, 0, -1), d_a


gatv2_scores.defvjp(_gatv2_forward, _gatv2_backward)


class LinearWeights(nn.Module):
  """A Dense layer's kernel (in, out) and bias, returned unapplied: GATv2 splits the kernel."""

  in_features: int
  features: int

  @nn.compact
  def __call__(self) -> tuple[jax.Array, jax.Array]:
    kernel = self.param("kernel", _kernel_init, (self.in_features, self.features))
    return kernel, self.param("bias", _zeros, (self.features,))


class GraphAttention(nn.Module):
  """Attention over the nodes of (B, N, F) inputs; returns (output, attention).

  Attributes:
    embed_dim: E, the width of W (GATv2: the LeakyReLU's width).
    use_gatv2: GATv2 scoring instead of GAT's.
    alpha: LeakyReLU negative slope.
    dropout: dropout on the attention weights in training.
  """

  embed_dim: int
  use_gatv2: bool = True
  alpha: float = 0.2
  dropout: float = 0.0

  @nn.compact
  def __call__(self, nodes: jax.Array, *, train: bool = False) -> tuple[jax.Array, jax.Array]:
    num_nodes, width = nodes.shape[-2:]
    pair_width = 2 * width if self.use_gatv2 else width
    kernel, bias = LinearWeights(pair_width, self.embed_dim, name="lin")()
    a_width = self.embed_dim if self.use_gatv2 else 2 * self.embed_dim
    a = self.param("a", nn.initializers.xavier_uniform(), (a_width, 1))[:, 0]
    # Zeros, as the port since 2023 (before, it left this bias uninitialised: NaNs).
    edge_bias = self.param("bias", _zeros, (num_nodes, num_nodes))

    if self.use_gatv2:
      source = nodes @ kernel[:width] + bias  # (B, N, E): the v_i half of W [v_i ; v_j]
      target = nodes @ kernel[width:]
      scores = gatv2_scores(source, target, a, self.alpha)
    else:
      embedded = nodes @ kernel + bias
      source = embedded @ a[:self.embed_dim]
      target = embedded @ a[self.embed_dim:]
      scores = nn.leaky_relu(source[..., :, None] + target[..., None, :], self.alpha)
    attention = jax.nn.softmax(scores + edge_bias, axis=-1)
    dropped = nn.Dropout(self.dropout, deterministic=not train)(attention)
    return nn.sigmoid(dropped @ nodes), attention


class StackedGRU(nn.Module):
  """`num_layers` GRUs over (B, L, F); returns every step of the last layer and its final state."""

  hidden: int
  num_layers: int = 1
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False) -> tuple[jax.Array, jax.Array]:
    for layer in range(self.num_layers):
      if layer:
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
      cell = layers.GRUCell(self.hidden, name=f"cell_{layer}")
      last, x = nn.RNN(cell, return_carry=True, name=f"layer_{layer}")(x)
    return x, last


class Forecaster(nn.Module):
  """MLP: `num_layers` ReLU layers of width `hidden`, then a linear map to `out_dim`."""

  hidden: int
  out_dim: int
  num_layers: int = 1
  dropout: float = 0.0

  @nn.compact
  def __call__(self, h: jax.Array, *, train: bool = False) -> jax.Array:
    for i in range(self.num_layers):
      h = nn.relu(nn.Dense(self.hidden, kernel_init=_kernel_init, name=f"layers_{i}")(h))
      h = nn.Dropout(self.dropout, deterministic=not train)(h)
    return nn.Dense(self.out_dim, kernel_init=_kernel_init, name=f"layers_{self.num_layers}")(h)


class GRUReconstructor(nn.Module):
  """A (B, H) state spread over `length` steps, decoded by a GRU, mapped to `out_dim`.

  With `interleave` (the port's GRU head), the steps are the port's
  `h.repeat_interleave(length, dim=1).view(B, length, H)`: each element of h
  repeated `length` times in a row, the run cut into `length` rows, so step t
  reads h[(t H + j) // length], not h itself. Without, every step reads h.
  """

  length: int
  hidden: int
  out_dim: int
  num_layers: int = 1
  dropout: float = 0.0
  interleave: bool = True

  @nn.compact
  def __call__(self, h: jax.Array, *, train: bool = False) -> jax.Array:
    if self.interleave:
      repeated = jnp.repeat(h, self.length, axis=-1).reshape(h.shape[0], self.length, -1)
    else:
      repeated = jnp.repeat(h[:, None, :], self.length, axis=1)
    decoded, _ = StackedGRU(self.hidden, self.num_layers, self.dropout, name="decoder")(
        repeated, train=train)
    return nn.Dense(self.out_dim, kernel_init=_kernel_init, name="fc")(decoded)


class VAEReconstructor(nn.Module):
  """q(z | h) Gaussian, z repeated over `length` steps, GRU decoder, Gaussian p(x | z).

  Returns (mean, std, kl): (B, length, out_dim) twice, and (B,) KL(q || N(0, I)).
  z is drawn from the "sample" rng stream in training (the standard normal draw
  sown as "noise"/"eps") and is the posterior mean otherwise, so scores are
  deterministic. The decoder reads z at every step (no interleaving).
  """

  length: int
  hidden: int
  out_dim: int
  latent_dim: int
  num_layers: int = 1
  dropout: float = 0.0

  @nn.compact
  def __call__(self, h: jax.Array, *, train: bool = False):
    mean = nn.Dense(self.latent_dim, kernel_init=_kernel_init, name="z_mean")(h)
    log_std = nn.Dense(self.latent_dim, kernel_init=_kernel_init, name="z_log_std")(h)
    z = mean
    if train:
      eps = jax.random.normal(self.make_rng("sample"), mean.shape)
      self.sow("noise", "eps", eps)
      z = mean + jnp.exp(log_std) * eps
    kl = 0.5 * jnp.sum(jnp.square(mean) + jnp.exp(2 * log_std) - 1.0 - 2 * log_std, axis=-1)
    decoded = GRUReconstructor(self.length, self.hidden, 2 * self.out_dim, self.num_layers,
                               self.dropout, interleave=False, name="decoder")(z, train=train)
    x_mean, raw_std = jnp.split(decoded, 2, axis=-1)
    x_std = nn.softplus(raw_std) + 1e-4
    return x_mean, x_std, kl


class MTADGAT(nn.Module):
  """Lookback (B, L, D) -> {"forecast": (B, T), "recon": ...} for the T target features.

  "recon" is (B, L, T) for the GRU head and (mean, std, kl) for the VAE head;
  a head the run mode does not use, or not named in `heads`, is not run.
  """

  num_features: int
  lookback: int  # points read: the window minus the point forecast
  target_dims: tuple[int, ...]
  run_mode: str
  recon_head: str
  kernel_size: int
  use_gatv2: bool
  feat_gat_embed_dim: int  # 0: the lookback length; GATv2 doubles it (as the port)
  time_gat_embed_dim: int  # 0: the number of features; GATv2 doubles it
  alpha: float
  gru_n_layers: int
  gru_hid_dim: int
  fc_n_layers: int
  fc_hid_dim: int
  recon_n_layers: int
  recon_hid_dim: int
  vae_latent_dim: int
  dropout: float
  gamma: float  # weight of the reconstruction part of the score

  @nn.nowrap
  def gat_embed_dims(self) -> tuple[int, int]:
    """The width E of the feature attention and of the time attention, as the port sets it."""
    factor = 2 if self.use_gatv2 else 1
    return (factor * (self.feat_gat_embed_dim or self.lookback),
            factor * (self.time_gat_embed_dim or self.num_features))

  @nn.compact
  def __call__(self, lookback: jax.Array, *, train: bool = False,
               heads: tuple[str, ...] = ("forecast", "recon")) -> dict:
    length = lookback.shape[1]
    feature_embed, time_embed = self.gat_embed_dims()
    pad = (self.kernel_size - 1) // 2
    x = nn.relu(nn.Conv(self.num_features, (self.kernel_size,), padding=[(pad, pad)],
                        kernel_init=_kernel_init, name="conv")(lookback))
    feature_out, _ = GraphAttention(feature_embed, self.use_gatv2, self.alpha, self.dropout,
                                    name="feature_gat")(jnp.swapaxes(x, 1, 2), train=train)
    time_out, _ = GraphAttention(time_embed, self.use_gatv2, self.alpha, self.dropout,
                                 name="temporal_gat")(x, train=train)
    joined = jnp.concatenate([x, jnp.swapaxes(feature_out, 1, 2), time_out], axis=-1)
    _, state = StackedGRU(self.gru_hid_dim, self.gru_n_layers, self.dropout, name="gru")(
        joined, train=train)

    out = {}
    targets = len(self.target_dims)
    if self.run_mode in ("FORECASTING", "BOTH") and "forecast" in heads:
      out["forecast"] = Forecaster(self.fc_hid_dim, targets, self.fc_n_layers, self.dropout,
                                   name="forecasting_model")(state, train=train)
    if self.run_mode in ("RECONSTRUCTING", "BOTH") and "recon" in heads:
      if self.recon_head == "vae":
        head = VAEReconstructor(length, self.recon_hid_dim, targets, self.vae_latent_dim,
                                self.recon_n_layers, self.dropout, name="recon_model")
      else:
        head = GRUReconstructor(length, self.recon_hid_dim, targets, self.recon_n_layers,
                                self.dropout, name="recon_model")
      out["recon"] = head(state, train=train)
    return out


# config.model fields that are MTADGAT fields of the same name.
_MODULE_FIELDS = ("run_mode", "recon_head", "kernel_size", "use_gatv2", "feat_gat_embed_dim",
                  "time_gat_embed_dim", "alpha", "gru_n_layers", "gru_hid_dim", "fc_n_layers",
                  "fc_hid_dim", "recon_n_layers", "recon_hid_dim", "vae_latent_dim", "dropout",
                  "gamma")


def parse_target_dims(value: str, num_features: int) -> tuple[int, ...]:
  """`config.model.target_dims` ("" = every feature, "0" or "0,3") as sorted feature indices."""
  if not str(value).strip():
    return tuple(range(num_features))
  try:
    dims = sorted({int(part) for part in str(value).split(",") if part.strip()})
  except ValueError:
    raise ValueError(f"config.model.target_dims={value!r} must be comma-separated feature "
                     "indices such as '0' or '0,3', or empty for every feature.") from None
  if not dims or dims[0] < 0 or dims[-1] >= num_features:
    raise ValueError(f"config.model.target_dims={value!r}: indices must lie in "
                     f"[0, {num_features - 1}] (the data has {num_features} features).")
  return tuple(dims)


def _check_config(model_config: ml_collections.ConfigDict, window: int) -> None:
  """Raises ValueError naming the first `config.model` (or `data.window`) field with a bad value."""
  if model_config.run_mode not in RUN_MODES:
    raise ValueError(f"config.model.run_mode={model_config.run_mode!r}; "
                     f"use one of {', '.join(RUN_MODES)}.")
  if model_config.recon_head not in RECON_HEADS:
    raise ValueError(f"config.model.recon_head={model_config.recon_head!r}; use gru or vae.")
  positive = ("kernel_size", "gru_n_layers", "gru_hid_dim", "fc_n_layers", "fc_hid_dim",
              "recon_n_layers", "recon_hid_dim", "vae_latent_dim")
  for field in positive:
    value = model_config[field]
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
      raise ValueError(f"config.model.{field}={value!r} must be a positive integer.")
  for field in ("feat_gat_embed_dim", "time_gat_embed_dim"):
    value = model_config[field]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
      raise ValueError(f"config.model.{field}={value!r} must be an integer >= 0 (0: default).")
  for field, upper in (("dropout", 1.0), ("gamma", math.inf)):
    value = model_config[field]
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < upper:
      raise ValueError(f"config.model.{field}={value!r} must be a number in [0, {upper}).")
  if window < 3:
    raise ValueError(f"config.data.window={window}: MTAD-GAT needs at least 3 (a lookback of "
                     "window - 1 points and the point it forecasts).")


def defaults() -> ml_collections.ConfigDict:
  """The `config.model` section: MTAD-GAT's defaults (those of the public PyTorch port).

  The lookback is `data.window - 1` points: the window also holds the point
  forecast and scored, so data.window 101 is the port's lookback of 100.
  """
  model = ml_collections.ConfigDict()
  model.name = "mtad_gat"
  model.run_mode = "BOTH"  # FORECASTING | RECONSTRUCTING | BOTH
  model.recon_head = "gru"  # gru (the PyTorch port) | vae (the paper)
  model.target_dims = ""  # features forecast and reconstructed: "" all, or "0", "0,3"
  model.kernel_size = 7
  model.use_gatv2 = True
  model.feat_gat_embed_dim = 0  # 0: the lookback length; GATv2 doubles this width
  model.time_gat_embed_dim = 0  # 0: the number of features; GATv2 doubles it
  model.alpha = 0.2  # LeakyReLU slope in the attention
  model.gru_n_layers = 1
  model.gru_hid_dim = 150
  model.fc_n_layers = 3
  model.fc_hid_dim = 150
  model.recon_n_layers = 1
  model.recon_hid_dim = 150
  model.vae_latent_dim = 18  # recon_head="vae": the seed's bottleneck
  model.dropout = 0.3
  model.gamma = 1.0  # score = (forecast + gamma * reconstruction) / (1 + gamma)
  model.scale_scores = False  # min-max scale both parts by their training range first
  return model


def build(model_config: ml_collections.ConfigDict, *, num_features: int, window: int):
  """The module for `config.model`; the lookback is `window - 1` points."""
  _check_config(model_config, window)
  return MTADGAT(
      num_features=num_features,
      lookback=window - 1,
      target_dims=parse_target_dims(model_config.target_dims, num_features),
      **{field: model_config[field] for field in _MODULE_FIELDS})


def _targets(model, x: jax.Array) -> jax.Array:
  return x[..., np.asarray(model.target_dims)]


def _gaussian_nll(x, mean, std):
  return 0.5 * (jnp.square((x - mean) / std) + _LOG_2PI) + jnp.log(std)


def loss(model, params, windows, *, rng, train):
  """Forecast RMSE + reconstruction RMSE (VAE: NLL + KL per element), by run mode."""
  lookback, last = windows[:, :-1], windows[:, -1]
  dropout_rng, sample_rng = jax.random.split(rng)
  out = model.apply({"params": params}, lookback, train=train,
                    rngs={"dropout": dropout_rng, "sample": sample_rng})
  total, parts = 0.0, {}
  if "forecast" in out:
    parts["forecast_rmse"] = jnp.sqrt(jnp.mean(jnp.square(out["forecast"] - _targets(model, last))))
    total = total + parts["forecast_rmse"]
  if "recon" in out:
    x = _targets(model, lookback)
    if model.recon_head == "vae":
      mean, std, kl = out["recon"]
      parts["recon_nll"] = jnp.mean(_gaussian_nll(x, mean, std))
      parts["kl"] = jnp.mean(kl) / x[0].size
      total = total + parts["recon_nll"] + parts["kl"]
    else:
      parts["recon_rmse"] = jnp.sqrt(jnp.mean(jnp.square(out["recon"] - x)))
      total = total + parts["recon_rmse"]
  return total, parts


def _scatter(model, values: jax.Array) -> jax.Array:
  """(B, T) target-feature values into (B, D), zeros elsewhere."""
  full = jnp.zeros(values.shape[:-1] + (model.num_features,), values.dtype)
  return full.at[..., np.asarray(model.target_dims)].set(values)


def score_parts(model, params, windows, *, rng):
  """(B, 1, 2, D): the forecast part and the reconstruction part of the last point's score.

  The forecast reads the first W-1 points; the reconstruction is of the last
  W-1 points (the window shifted by one, so it ends at the scored point). A
  part the run mode does not train is 0.
  """
  del rng
  # Each pass runs only the head it needs: the scoring passes are the hot path.
  apply = lambda x, head: model.apply({"params": params}, x, heads=(head,))[head]
  last = _targets(model, windows[:, -1])
  forecast = recon = jnp.zeros_like(last)
  if model.run_mode in ("FORECASTING", "BOTH"):
    forecast = jnp.square(apply(windows[:, :-1], "forecast") - last)
  if model.run_mode in ("RECONSTRUCTING", "BOTH"):
    shifted = apply(windows[:, 1:], "recon")
    if model.recon_head == "vae":
      mean, std, _ = shifted
      recon = _gaussian_nll(last, mean[:, -1], std[:, -1])
    else:
      recon = jnp.square(shifted[:, -1] - last)
  parts = jnp.stack([_scatter(model, forecast), _scatter(model, recon)], axis=1)
  return parts[:, None]


def mix_parts(forecast, recon, *, run_mode: str, gamma: float):
  """The score from its two parts (arrays of any framework): by run mode, weighted by gamma."""
  if run_mode == "FORECASTING":
    return forecast
  if run_mode == "RECONSTRUCTING":
    return recon
  return (forecast + gamma * recon) / (1.0 + gamma)


def score(model, params, windows, *, rng):
  """(B, 1, D) per-feature score of the last point, without `scale_scores`."""
  parts = score_parts(model, params, windows, rng=rng)
  return mix_parts(parts[..., 0, :], parts[..., 1, :], run_mode=model.run_mode, gamma=model.gamma)


def combine(parts: np.ndarray, *, reference: np.ndarray,
            model_config: ml_collections.ConfigDict) -> np.ndarray:
  """(T, 2, D) score parts -> (T, D) per-feature scores.

  With `scale_scores`, each part of each feature is min-max scaled by its range
  in `reference` (the same entity's training scores), so thresholds fitted on
  training scores compare like with like; test values may leave [0, 1].
  """
  parts = np.asarray(parts, np.float64)
  if model_config.scale_scores:
    low, high = reference.min(axis=0), reference.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    parts = (parts - low) / span
  mixed = mix_parts(parts[:, 0], parts[:, 1], run_mode=model_config.run_mode,
               gamma=float(model_config.gamma))
  return mixed.astype(np.float32)


HOOKS = Hooks(score_parts=score_parts, combine=combine)
