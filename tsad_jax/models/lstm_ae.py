"""LSTM autoencoder: encode a window to one vector, decode it back; two optional heads.

The encoder LSTM's final hidden state summarises the window; the decoder LSTM
reads that vector at every step and a dense layer maps its states back to the
features (the layout of matanle51/LSTM_AutoEncoder). `config.model.variant`
picks one of that repository's three models:

  "ae": the plain autoencoder. Loss: the mean squared reconstruction error.
    Score of every point of the window, per feature: its squared
    reconstruction error.

  "pred" (LSTMAE_PRED): a dense prediction head on the encoder's final state
    forecasts the next `pred_steps` = p points of every feature. The module
    reads the first L = W - p points of a window (its `lookback`) and
    reconstructs them. Loss: reconstruction MSE + `pred_weight` x forecast MSE.
    Score, (B, W, D): points t < L take their squared reconstruction error;
    the p forecast points take their squared forecast error plus
    `recon_weight` x the squared reconstruction error of the last point read
    (x_{L-1}). Under the "last" point rule a timestep's score is thus the
    error of its forecast from the preceding points, plus the reconstruction
    error of the point p steps before it.

  "clf" (LSTMAE_CLF): a dense classification head on the decoder's final state
    gives the probability that a window holds an anomaly. The seed trains it
    on labelled toy windows (spikes and level shifts); unsupervised detection
    has no labels, so it is trained self-supervised: in each training batch a
    fraction `clf_inject_ratio` of the windows, chosen from the loss rng, get
    one synthetic anomaly (`inject_anomalies`): a spike at one point or a level
    shift from one point to the window's end, in one feature, of size
    `clf_inject_scale` x U(0.5, 1.5) with a random sign (data units: the
    features are normalised to [0, 1] by default). Those windows are labelled
    1, the others 0. Loss: the reconstruction MSE of the clean windows (the
    autoencoder never learns to reproduce an anomaly) + `clf_weight` x the
    binary cross-entropy of the labels. Without training (validation losses),
    the loss is its expectation over which windows are injected: the clean
    windows' reconstruction MSE + `clf_weight` x ((1 - ratio) x the BCE of every
    clean window as 0 + ratio x the BCE of every window, injected, as 1); it
    so stays defined for one window at a time. Score, (B, W, D): the squared
    reconstruction error of every point + `clf_weight_score` x the window's
    anomaly probability / D, the probability spread evenly over the features
    (they sum to the probability; it says nothing about which feature).

Every variant scores every point of its window (SCORES_EVERY_POINT).
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from tsad_jax.models import Hooks
from tsad_jax.models import layers
from tsad_jax.models import reconstruction

TITLE = "LSTM-AE"
SCORING_FIELDS = ("recon_weight", "clf_weight_score")
SCORES_EVERY_POINT = True
HOOKS = Hooks()
VARIANTS = ("ae", "clf", "pred")


class LSTMAutoencoder(nn.Module):
  """Window (B, L, D) -> reconstruction (B, L, D), and the variant's head output.

  Returns the reconstruction alone for "ae", (reconstruction, (B,) anomaly
  logits) for "clf" and (reconstruction, (B, pred_steps, D) forecast) for "pred".
  The loss and score weights are read by `loss` and `score`, not here.

  Attributes:
    num_features: D.
    lookback: L, the points read: the window, or the window minus `pred_steps`
      for "pred" (`build` sets it).
    hidden_size: width of both LSTMs.
    dropout: dropout on the code in training.
    variant: "ae", "clf" or "pred".
    pred_steps: points forecast by "pred".
    output_sigmoid: squash the reconstruction into (0, 1), as the seed's
      `use_act` does (for data min-max normalised to [0, 1]).
  """

  num_features: int
  lookback: int | None
  hidden_size: int
  dropout: float
  variant: str
  pred_steps: int
  pred_weight: float
  recon_weight: float
  clf_inject_ratio: float
  clf_inject_scale: float
  clf_weight: float
  clf_weight_score: float
  output_sigmoid: bool

  @nn.compact
  def __call__(self, windows: jax.Array, *, train: bool = False):
    length = windows.shape[1]
    encoder = nn.RNN(layers.LSTMCell(self.hidden_size, name="encoder_cell"),
                     return_carry=True, name="encoder")
    (_, code), _ = encoder(windows)
    code = nn.Dropout(self.dropout, deterministic=not train)(code)
    decoder = layers.RepeatedInputLSTM(self.hidden_size, length=length, name="decoder_cell")
    (_, decoder_state), decoded = decoder(code)
    reconstruction = nn.Dense(self.num_features, name="output")(decoded)
    if self.output_sigmoid:
      reconstruction = nn.sigmoid(reconstruction)
    if self.variant == "clf":
      return reconstruction, nn.Dense(1, name="classifier")(decoder_state)[:, 0]
    if self.variant == "pred":
      forecast = nn.Dense(self.pred_steps * self.num_features, name="predictor")(code)
      return reconstruction, forecast.reshape(-1, self.pred_steps, self.num_features)
    return reconstruction

  def with_anomalies(self, windows: jax.Array, rng: jax.Array, *, train: bool = False):
    """"clf" training: (injected windows, labels, (reconstruction, logits)) of `windows`.

    `inject_anomalies` draws from `rng`; the injected windows and their labels
    are sown ("noise"), so a PyTorch twin can compute on the same ones.
    """
    injected, labels = inject_anomalies(windows, rng, ratio=self.clf_inject_ratio,
                                        scale=self.clf_inject_scale)
    self.sow("noise", "injected", injected)
    self.sow("noise", "labels", labels)
    return injected, labels, self(injected, train=train)


# config.model fields that are LSTMAutoencoder fields of the same name.
_MODULE_FIELDS = ("hidden_size", "dropout", "output_sigmoid", "variant", "pred_steps",
                  "pred_weight", "recon_weight", "clf_inject_ratio", "clf_inject_scale",
                  "clf_weight", "clf_weight_score")


def _number(model_config: ml_collections.ConfigDict, field: str, *, high: float = math.inf,
            closed: bool = False) -> float:
  """`config.model.<field>`, checked to be a number in [0, high) ([0, high] if `closed`)."""
  value = model_config[field]
  inside = 0 <= value <= high if closed else 0 <= value < high
  if isinstance(value, bool) or not isinstance(value, int | float) or not inside:
    raise ValueError(f"config.model.{field}={value!r} must be a number in "
                     f"[0, {high}{']' if closed else ')'}.")
  return value


def _check_config(model_config: ml_collections.ConfigDict, window: int) -> None:
  """Raises ValueError naming the first `config.model` field with a bad value."""
  if model_config.variant not in VARIANTS:
    raise ValueError(f"config.model.variant={model_config.variant!r}; "
                     f"use one of {', '.join(VARIANTS)}.")
  for field in ("hidden_size", "pred_steps"):
    value = model_config[field]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
      raise ValueError(f"config.model.{field}={value!r} must be a positive integer.")
  if model_config.variant == "pred" and model_config.pred_steps >= window:
    raise ValueError(f"config.model.pred_steps={model_config.pred_steps} must be less than "
                     f"config.data.window={window}: the encoder reads the other points.")
  if not isinstance(model_config.output_sigmoid, bool):
    raise ValueError(f"config.model.output_sigmoid={model_config.output_sigmoid!r} must be "
                     "True or False.")
  _number(model_config, "dropout", high=1.0)
  _number(model_config, "clf_inject_ratio", high=1.0, closed=True)
  for field in ("pred_weight", "recon_weight", "clf_weight", "clf_weight_score"):
    _number(model_config, field)
  if not _number(model_config, "clf_inject_scale") > 0:
    raise ValueError("config.model.clf_inject_scale=0: an injected anomaly needs a size > 0.")


def defaults() -> ml_collections.ConfigDict:
  """The `config.model` section: LSTM autoencoder's defaults.

  `variant` adds a head of matanle51/LSTM_AutoEncoder (see tsad_jax/models/lstm_ae.py):
  "pred" forecasts the window's last `pred_steps` points from the others; "clf"
  classifies windows, trained on synthetic anomalies injected into the batch.
  """
  model = ml_collections.ConfigDict()
  model.name = "lstm_ae"
  model.hidden_size = 64
  model.dropout = 0.0
  model.output_sigmoid = False  # the seed's use_act: a sigmoid on the reconstruction
  model.variant = "ae"  # ae | pred (prediction head) | clf (classification head)
  model.pred_steps = 1  # pred: points forecast; the encoder reads window - pred_steps
  model.pred_weight = 1.0  # pred: loss = recon MSE + pred_weight * forecast MSE
  model.recon_weight = 1.0  # pred: score = forecast error + recon_weight * recon error
  model.clf_inject_ratio = 0.5  # clf: fraction of a batch's windows given an anomaly
  model.clf_inject_scale = 0.5  # clf: typical injected size, in normalised units
  model.clf_weight = 1.0  # clf: loss = clean recon MSE + clf_weight * BCE
  model.clf_weight_score = 1.0  # clf: score = recon error + this * probability / D
  return model


def build(model_config: ml_collections.ConfigDict, *, num_features: int, window: int):
  """The module for `config.model`; "pred" reads window - pred_steps points."""
  # Runs saved before the variants existed lack their fields: with the defaults, "ae" runs.
  model_config = ml_collections.ConfigDict({**defaults().to_dict(), **model_config.to_dict()})
  _check_config(model_config, window)
  points_read = window - model_config.pred_steps if model_config.variant == "pred" else window
  return LSTMAutoencoder(num_features=num_features, lookback=points_read,
                         **{field: model_config[field] for field in _MODULE_FIELDS})


def inject_anomalies(windows: jax.Array, rng: jax.Array, *, ratio: float,
                     scale: float) -> tuple[jax.Array, jax.Array]:
  """Adds one synthetic anomaly to round(ratio * B) of the windows, chosen from `rng`.

  Each chosen window gets, in one random feature, either a spike (one random
  point) or a level shift (from a random point to the window's end), of size
  scale x U(0.5, 1.5) with a random sign.

  Args:
    windows: (B, W, D).
    rng: PRNG key; it draws the windows, features, points, kinds and sizes.
    ratio: the fraction of windows injected, in [0, 1].
    scale: the typical size, > 0.

  Returns:
    The windows, the chosen ones changed, and (B,) float labels: 1 for those.
  """
  batch, window, features = windows.shape
  keys = jax.random.split(rng, 6)
  count = math.floor(ratio * batch + 0.5)
  rank = jnp.argsort(jax.random.permutation(keys[0], batch))
  labels = (rank < count).astype(windows.dtype)
  feature = jax.random.randint(keys[1], (batch,), 0, features)
  start = jax.random.randint(keys[2], (batch,), 0, window)
  is_shift = jax.random.bernoulli(keys[3], 0.5, (batch,))
  sign = jnp.where(jax.random.bernoulli(keys[4], 0.5, (batch,)), 1.0, -1.0)
  size = scale * sign * jax.random.uniform(keys[5], (batch,), minval=0.5, maxval=1.5)
  steps = jnp.arange(window)[None, :]
  in_time = jnp.where(is_shift[:, None], steps >= start[:, None], steps == start[:, None])
  in_feature = jnp.arange(features)[None, :] == feature[:, None]
  bump = (labels * size)[:, None, None] * in_time[:, :, None] * in_feature[:, None, :]
  return windows + bump.astype(windows.dtype), labels


def predict(model, params, windows: jax.Array, *, train: bool = False,
            rng: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
  """The "pred" heads on (B, W, D) windows: (reconstruction, forecast) of their first L points.

  Only the lookback (the first L = W - pred_steps points) is read; the
  reconstruction is (B, L, D) and the forecast of the last points (B, pred_steps, D).
  """
  if windows.shape[1] != model.lookback + model.pred_steps:
    raise ValueError(f"Windows of {windows.shape[1]} points; the model reads {model.lookback} "
                     f"and forecasts {model.pred_steps}.")
  rngs = {"dropout": rng} if rng is not None else {}
  return model.apply({"params": params}, windows[:, :model.lookback], train=train, rngs=rngs)


def _pred_loss(model, params, windows, *, rng, train):
  recon, forecast = predict(model, params, windows, train=train, rng=rng)
  recon_mse = jnp.mean(jnp.square(recon - windows[:, :model.lookback]))
  forecast_mse = jnp.mean(jnp.square(forecast - windows[:, model.lookback:]))
  total = recon_mse + model.pred_weight * forecast_mse
  return total, {"recon_mse": recon_mse, "forecast_mse": forecast_mse}


def _clf_loss(model, params, windows, *, rng, train):
  inject_rng, dropout_rng = jax.random.split(rng)
  apply = lambda *args, **kwargs: model.apply({"params": params}, *args, train=train,
                                              rngs={"dropout": dropout_rng}, **kwargs)
  if train:
    injected, labels, (recon, logits) = apply(windows, inject_rng,
                                              method=LSTMAutoencoder.with_anomalies)
    clean = 1.0 - labels
    window_mse = jnp.mean(jnp.square(recon - injected), axis=(1, 2))
    mse = jnp.sum(clean * window_mse) / jnp.maximum(jnp.sum(clean), 1.0)
    bce = jnp.mean(optax.sigmoid_binary_cross_entropy(logits, labels))
  else:  # the expectation over the choice of windows: every window clean, and injected
    ratio = model.clf_inject_ratio
    injected, _ = inject_anomalies(windows, inject_rng, ratio=1.0, scale=model.clf_inject_scale)
    recon, logits = apply(jnp.concatenate([windows, injected]))
    clean_logits, injected_logits = jnp.split(logits, 2)
    mse = jnp.mean(jnp.square(recon[:len(windows)] - windows))
    bce = ((1.0 - ratio) * jnp.mean(optax.sigmoid_binary_cross_entropy(clean_logits, 0.0))
           + ratio * jnp.mean(optax.sigmoid_binary_cross_entropy(injected_logits, 1.0)))
  return mse + model.clf_weight * bce, {"mse": mse, "bce": bce}


def loss(model, params, windows, *, rng, train):
  """The variant's loss (module docstring); dropout and injections draw from `rng`."""
  if model.variant == "pred":
    return _pred_loss(model, params, windows, rng=rng, train=train)
  if model.variant == "clf":
    return _clf_loss(model, params, windows, rng=rng, train=train)
  return reconstruction.loss(model, params, windows, rng=rng, train=train)


def score(model, params, windows, *, rng):
  """(B, W, D) per-point, per-feature scores of the variant (module docstring)."""
  if model.variant == "pred":
    recon, forecast = predict(model, params, windows)
    recon_error = jnp.square(recon - windows[:, :model.lookback])
    forecast_error = jnp.square(forecast - windows[:, model.lookback:])
    forecast_error = forecast_error + model.recon_weight * recon_error[:, -1:]
    return jnp.concatenate([recon_error, forecast_error], axis=1)
  if model.variant == "clf":
    recon, logits = model.apply({"params": params}, windows)
    probability = jax.nn.sigmoid(logits)[:, None, None] / model.num_features
    return jnp.square(recon - windows) + model.clf_weight_score * probability
  return reconstruction.score(model, params, windows, rng=rng)
