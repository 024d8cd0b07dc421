"""PyTorch twin of tsad_jax/models/lstm_ae.py, in the layout of matanle51/LSTM_AutoEncoder.

state_dict of the "ae" variant (that repository's `LSTMAE`):
  encoder.lstm_enc.*   nn.LSTM(D, H)     <-> encoder_cell
  decoder.lstm_dec.*   nn.LSTM(H, H)     <-> decoder_cell
  decoder.fc.*         nn.Linear(H, D)   <-> output
"clf" (`LSTMAECLF`) and "pred" (`LSTMAEPRED`) hold that autoencoder under
`lstmae.` and add their head:
  fc.*                 nn.Linear(H, 1)           <-> classifier  ("clf", one class: the logit)
  pred_fc.*            nn.Linear(H, p * D)       <-> predictor   ("pred")
The repository's `pred_fc` forecasts one point (p = 1: the same shape) from
every encoder output; here it forecasts p points from the last one, as the
Flax model does. The repository's output sigmoid (`use_act`, on by default
there) is `config.model.output_sigmoid` (off by default here); it has no
parameters.
"""

import torch
from torch import nn
from torch.nn import functional

from interop import layouts
from tsad_jax.models import lstm_ae as flax_lstm_ae


class Encoder(nn.Module):
  """Window (B, L, D) -> code (B, H): the encoder LSTM's final hidden state."""

  def __init__(self, num_features: int, hidden_size: int):
    super().__init__()
    self.lstm_enc = nn.LSTM(num_features, hidden_size, batch_first=True)

  def forward(self, windows):
    _, (h, _) = self.lstm_enc(windows)
    return h[0]


class Decoder(nn.Module):
  """Code repeated over L steps -> (reconstruction (B, L, D), final hidden state (B, H))."""

  def __init__(self, num_features: int, hidden_size: int, sigmoid: bool):
    super().__init__()
    self.lstm_dec = nn.LSTM(hidden_size, hidden_size, batch_first=True)
    self.fc = nn.Linear(hidden_size, num_features)
    self.act = nn.Sigmoid() if sigmoid else nn.Identity()

  def forward(self, code, length: int):
    decoded, (h, _) = self.lstm_dec(code[:, None, :].expand(-1, length, -1))
    return self.act(self.fc(decoded)), h[0]


class LSTMAE(nn.Module):
  """The autoencoder: window -> (reconstruction, code, decoder's final state)."""

  def __init__(self, num_features: int, hidden_size: int, dropout: float, sigmoid: bool):
    super().__init__()
    self.encoder = Encoder(num_features, hidden_size)
    self.decoder = Decoder(num_features, hidden_size, sigmoid)
    self.dropout = nn.Dropout(dropout)

  def forward(self, windows):
    code = self.dropout(self.encoder(windows))
    reconstruction, state = self.decoder(code, windows.shape[1])
    return reconstruction, code, state


class LSTMAEHead(nn.Module):
  """`LSTMAE` under `lstmae` plus the "clf" (`fc`) or "pred" (`pred_fc`) head."""

  def __init__(self, num_features: int, hidden_size: int, dropout: float, sigmoid: bool,
               variant: str, pred_steps: int):
    super().__init__()
    self.variant, self.pred_steps = variant, pred_steps
    self.lstmae = LSTMAE(num_features, hidden_size, dropout, sigmoid)
    if variant == "clf":
      self.fc = nn.Linear(hidden_size, 1)
    else:
      self.pred_fc = nn.Linear(hidden_size, pred_steps * num_features)

  def forward(self, windows):
    """(reconstruction, (B,) logits) for "clf"; (reconstruction, (B, p, D) forecast) for "pred"."""
    reconstruction, code, state = self.lstmae(windows)
    if self.variant == "clf":
      return reconstruction, self.fc(state)[:, 0]
    return reconstruction, self.pred_fc(code).reshape(len(windows), self.pred_steps, -1)


def _flax_model(model_config, *, num_features: int, window: int):
  """The Flax module: its fields (variant, lookback, weights) with the defaults filled in."""
  return flax_lstm_ae.build(model_config, num_features=num_features, window=window)


def build(model_config, *, num_features: int, window: int) -> nn.Module:
  model = _flax_model(model_config, num_features=num_features, window=window)
  sizes = (num_features, model.hidden_size, model.dropout, model.output_sigmoid)
  if model.variant == "ae":
    module = LSTMAE(*sizes)
  else:
    module = LSTMAEHead(*sizes, model.variant, model.pred_steps)
  module.flax_model = model  # the loss and score weights, read by `loss` and `score`
  return module


def entries(model_config, *, num_features: int, window: int) -> list[layouts.Entry]:
  model = _flax_model(model_config, num_features=num_features, window=window)
  prefix = "" if model.variant == "ae" else "lstmae."
  autoencoder = [*layouts.rnn_layer(f"{prefix}encoder.lstm_enc", 0, "encoder_cell"),
                 *layouts.rnn_layer(f"{prefix}decoder.lstm_dec", 0, "decoder_cell"),
                 *layouts.linear(f"{prefix}decoder.fc", "output")]
  heads = {"ae": [], "clf": layouts.linear("fc", "classifier"),
           "pred": layouts.linear("pred_fc", "predictor")}
  return autoencoder + heads[model.variant]


def forward(module, windows, noise):
  """The Flax model's output: the reconstruction, with the head's output for clf/pred."""
  del noise
  out = module(windows)
  return out[0] if isinstance(module, LSTMAE) else out


def _mse(a, b):
  return torch.mean(torch.square(a - b))


def loss(module, windows, noise):
  """The variant's training loss (tsad_jax/models/lstm_ae.py)."""
  model = module.flax_model
  if model.variant == "pred":
    reconstruction, forecast = module(windows[:, :model.lookback])
    return (_mse(reconstruction, windows[:, :model.lookback])
            + model.pred_weight * _mse(forecast, windows[:, model.lookback:]))
  if model.variant == "clf":
    injected, labels = noise[0]["injected"][0], noise[0]["labels"][0]
    reconstruction, logits = module(injected)
    clean = 1.0 - labels
    window_mse = torch.mean(torch.square(reconstruction - injected), dim=(1, 2))
    mse = torch.sum(clean * window_mse) / torch.clamp(torch.sum(clean), min=1.0)
    return mse + model.clf_weight * functional.binary_cross_entropy_with_logits(logits, labels)
  return _mse(forward(module, windows, noise), windows)


def score(module, windows, noise):
  """(B, W, D) per-point, per-feature scores of the variant."""
  del noise
  model = module.flax_model
  if model.variant == "pred":
    reconstruction, forecast = module(windows[:, :model.lookback])
    recon_error = torch.square(reconstruction - windows[:, :model.lookback])
    forecast_error = (torch.square(forecast - windows[:, model.lookback:])
                      + model.recon_weight * recon_error[:, -1:])
    return torch.cat([recon_error, forecast_error], dim=1)
  reconstruction, *rest = module(windows)
  out = torch.square(reconstruction - windows)
  if model.variant == "clf":
    probability = torch.sigmoid(rest[0])[:, None, None] / model.num_features
    out = out + model.clf_weight_score * probability
  return out
