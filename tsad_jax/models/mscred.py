"""MSCRED (Zhang et al., AAAI 2019): reconstruct multi-scale signature matrices.

A window (B, W, D) becomes `steps` stacks of signature matrices, computed on
the device: at `steps` time points spaced `gap` apart and ending at the
window's last point, one (D, D) matrix per scale w in `scales`,
M^w_t[i, j] = sum_{d=0}^{w-1} x_i(t-d) x_j(t-d) / w. A 4-level convolutional
encoder (SELU) maps each step's (D, D, n_scales) stack to feature maps; at each
level an attention-based ConvLSTM runs over the steps and the temporal attention
mixes its hidden states; a deconvolutional decoder with skip connections
reconstructs the last step's matrices from the attended maps, SELU after every
transposed convolution, the last included (the paper's Eq. 5 and both reference
codes).

Paddings are the authors' TensorFlow code's "SAME" (any D works); the PyTorch
reference's fixed paddings fit only D = 6 mod 8 and shift the strided levels by
one point (interop/torch_models/mscred.py loads its checkpoints).

Loss: mean squared error of that reconstruction. Score of the window's last
point, per feature i: the squared residual (M - M_hat)^2 summed over row i and
over the scales ("residual"), or the number of entries of row i above
`residual_threshold` (the paper's count of broken entries, "count"). The
reference code (Zhang-Zhi-Jie/Pytorch-MSCRED) counts on the smallest scale only;
here every scale counts unless `score_scales` names some ("10" reads the
reference's). Ranking features by their score is the paper's root cause
identification.
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from tsad_jax.models import Hooks

TITLE = "MSCRED"
SCORING_FIELDS = ("score_mode", "residual_threshold", "score_scales", "score_stride")
SCORES_EVERY_POINT = False
SCORE_MODES = ("residual", "count")

# Encoder levels as the paper: 3x3 stride 1, 3x3 stride 2, 2x2 stride 2, 2x2 stride 2.
KERNELS = (3, 3, 2, 2)
STRIDES = (1, 2, 2, 2)
LSTM_KERNEL = 3

# LeCun normal is the initialisation SELU's self-normalisation assumes.
_KERNEL_INIT = nn.initializers.lecun_normal()
_BIAS_INIT = nn.initializers.zeros


def parse_ints(text: str) -> tuple[int, ...]:
  """'10,30,60' -> (10, 30, 60); raises ValueError on anything else."""
  return tuple(int(part) for part in str(text).split(","))


def required_window(scales, gap: int, steps: int) -> int:
  """The window holding `steps` points `gap` apart, each with `max(scales)` history."""
  return max(scales) + gap * (steps - 1)


def step_segments(window: int, *, scales, gap: int, steps: int) -> list[np.ndarray]:
  """Per scale w, the (steps, w) indices of the points each step's matrix sums over.

  Step k ends at t_k = window-1 - gap*(steps-1-k) and sums over t_k-w+1 .. t_k.
  """
  ends = window - 1 - gap * np.arange(steps - 1, -1, -1)
  return [ends[:, None] - np.arange(w - 1, -1, -1) for w in scales]


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
  """(before, after) zero padding of a "SAME" conv: ceil(size / stride) outputs.

  TensorFlow's rule (the authors' code): an odd total puts the extra point after.
  """
  total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
  return total // 2, total - total // 2


def deconv_padding(kernel: int, stride: int) -> int:
  """The PyTorch ConvTranspose2d padding of a decoder level.

  At stride 1, (kernel-1)//2 keeps the size; a strided level keeps its full
  output, (n-1)*stride + kernel, which the decoder crops to the skip
  connection's size: the transpose of the encoder's "SAME" conv.
  """
  return (kernel - 1) // 2 if stride == 1 else 0


def signature_matrices(windows: jax.Array, *, scales, gap: int, steps: int) -> jax.Array:
  """Multi-scale signature matrices of each window.

  Args:
    windows: (B, W, D), W >= required_window(scales, gap, steps).
    scales: the lengths w of history each matrix sums over.
    gap: time points between consecutive steps.
    steps: number of time points; the last is the window's last point.

  Returns:
    (B, steps, D, D, len(scales)), M[b, k, i, j, s] = sum_{d<w} x_i(t_k-d) x_j(t_k-d) / w
    with w = scales[s] and t_k = W-1 - gap*(steps-1-k).
  """
  window = windows.shape[1]
  if window < required_window(scales, gap, steps):
    raise ValueError(f"A window of {window} points is shorter than the "
                     f"{required_window(scales, gap, steps)} the signature matrices need.")
  per_scale = []
  for index in step_segments(window, scales=scales, gap=gap, steps=steps):
    segments = windows[:, index]  # (B, steps, w, D)
    per_scale.append(jnp.einsum("bkti,bktj->bkij", segments, segments) / index.shape[1])
  return jnp.stack(per_scale, axis=-1)


def temporal_attention(hidden: jax.Array) -> tuple[jax.Array, jax.Array]:
  """The paper's attention over the steps of one sample's ConvLSTM hidden states.

  Step k scores sum(h_k * h_last) / steps (over H, W and C); a softmax over the
  steps of each sample gives the weights.

  Args:
    hidden: (B, steps, H, W, C).

  Returns:
    (attended (B, H, W, C) = sum_k alpha_k h_k, weights alpha (B, steps)).
  """
  steps = hidden.shape[1]
  logits = jnp.sum(hidden * hidden[:, -1:], axis=(2, 3, 4)) / steps
  weights = jax.nn.softmax(logits, axis=1)
  return jnp.einsum("bk,bkhwc->bhwc", weights, hidden), weights


def _conv(features: int, kernel: int, stride: int, size: int, name: str) -> nn.Conv:
  """A "SAME" conv of a (size, size) input, its padding explicit."""
  pads = same_padding(size, kernel, stride)
  return nn.Conv(features, (kernel, kernel), strides=(stride, stride), padding=(pads, pads),
                 kernel_init=_KERNEL_INIT, bias_init=_BIAS_INIT, name=name)


def _deconv(features: int, kernel: int, stride: int, name: str) -> nn.ConvTranspose:
  """torch.nn.ConvTranspose2d(kernel, stride, padding=deconv_padding(kernel, stride))."""
  # Flax pads the stride-dilated input: kernel-1-p on each side is PyTorch's padding p.
  pad = kernel - 1 - deconv_padding(kernel, stride)
  return nn.ConvTranspose(features, (kernel, kernel), strides=(stride, stride),
                          padding=((pad, pad), (pad, pad)), kernel_init=_KERNEL_INIT,
                          bias_init=_BIAS_INIT, name=name)


class ConvEncoder(nn.Module):
  """(N, D, D, n_scales) -> the 4 levels' feature maps, SELU after each conv."""

  filters: tuple[int, ...]

  @nn.compact
  def __call__(self, x: jax.Array) -> list[jax.Array]:
    maps = []
    for level, (features, kernel, stride) in enumerate(zip(self.filters, KERNELS, STRIDES,
                                                           strict=True)):
      x = nn.selu(_conv(features, kernel, stride, x.shape[1], f"conv_{level + 1}")(x))
      maps.append(x)
    return maps


class ConvLSTMCell(nn.Module):
  """One ConvLSTM step: a conv over concat(input, hidden) gives the 4 gates."""

  features: int

  @nn.compact
  def __call__(self, carry, x: jax.Array):
    h, c = carry
    gates = _conv(4 * self.features, LSTM_KERNEL, 1, x.shape[1], "gates")(
        jnp.concatenate([x, h], axis=-1))
    input_gate, forget_gate, candidate, output_gate = jnp.split(gates, 4, axis=-1)
    c = nn.sigmoid(forget_gate) * c + nn.sigmoid(input_gate) * jnp.tanh(candidate)
    h = nn.sigmoid(output_gate) * jnp.tanh(c)
    return (h, c), h


class AttentionConvLSTM(nn.Module):
  """(B, steps, H, W, C_in) -> (B, H, W, features): ConvLSTM over the steps, then attention.

  The attention weights are sown into the "intermediates" collection.
  """

  features: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    cell = ConvLSTMCell(self.features, name="cell")
    zeros = jnp.zeros(x.shape[:1] + x.shape[2:4] + (self.features,), x.dtype)
    # A Python loop, not a scan: XLA's CPU backward pass of a conv inside a loop
    # is ~16x slower than of the same convs unrolled (steps is small).
    carry, hidden = (zeros, zeros), []
    for step in range(x.shape[1]):
      carry, h = cell(carry, x[:, step])
      hidden.append(h)
    attended, weights = temporal_attention(jnp.stack(hidden, axis=1))
    self.sow("intermediates", "attention", weights)
    return attended


class DeconvDecoder(nn.Module):
  """Attended maps of the 4 levels -> (B, D, D, num_scales).

  Each transposed conv undoes one encoder level; its output is cropped to the
  next level's size (a padded stride-2 conv rounds sizes up) and concatenated
  with that level's attended map. SELU follows every transposed conv.
  """

  filters: tuple[int, ...]
  num_scales: int

  @nn.compact
  def __call__(self, attended: list[jax.Array]) -> jax.Array:
    x = attended[-1]
    for level in range(len(attended) - 1, 0, -1):
      skip = attended[level - 1]
      kernel, stride = KERNELS[level], STRIDES[level]
      x = _deconv(self.filters[level - 1], kernel, stride, f"deconv_{level + 1}")(x)
      x = nn.selu(x[:, :skip.shape[1], :skip.shape[2]])
      x = jnp.concatenate([x, skip], axis=-1)
    return nn.selu(_deconv(self.num_scales, KERNELS[0], STRIDES[0], "deconv_1")(x))


class MSCRED(nn.Module):
  """Window (B, W, D) -> {"reconstruction", "target"}: the last step's (B, D, D, n_scales)."""

  num_features: int
  scales: tuple[int, ...]
  gap: int
  steps: int
  filters: tuple[int, ...]
  score_mode: str  # read by `score`
  residual_threshold: float  # read by `score`
  score_scales: tuple[int, ...]  # read by `score`; () reads every scale

  @nn.compact
  def __call__(self, windows: jax.Array, *, train: bool = False) -> dict[str, jax.Array]:
    del train  # no dropout
    matrices = signature_matrices(windows, scales=self.scales, gap=self.gap, steps=self.steps)
    batch = matrices.shape[0]
    maps = ConvEncoder(self.filters, name="encoder")(
        matrices.reshape((batch * self.steps,) + matrices.shape[2:]))
    attended = [
        AttentionConvLSTM(features, name=f"conv_lstm_{level + 1}")(
            level_maps.reshape((batch, self.steps) + level_maps.shape[1:]))
        for level, (features, level_maps) in enumerate(zip(self.filters, maps, strict=True))]
    reconstruction = DeconvDecoder(self.filters, len(self.scales), name="decoder")(attended)
    return {"reconstruction": reconstruction, "target": matrices[:, -1]}


def _positive_int(model_config: ml_collections.ConfigDict, field: str) -> int:
  value = model_config[field]
  if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
    raise ValueError(f"config.model.{field}={value!r} must be a positive integer.")
  return value


def _int_list(model_config: ml_collections.ConfigDict, field: str, example: str) -> tuple:
  value = model_config[field]
  try:
    numbers = parse_ints(value)
  except ValueError:
    numbers = ()
  if not numbers or min(numbers) <= 0:
    raise ValueError(f"config.model.{field}={value!r} must be comma-separated positive "
                     f"integers, e.g. --config.model.{field}={example}.")
  return numbers


def _check_config(model_config: ml_collections.ConfigDict) -> None:
  """Raises ValueError naming the first `config.model` field with a bad value."""
  scales = _int_list(model_config, "scales", "10,30,60")
  if len(set(scales)) != len(scales):
    raise ValueError(f"config.model.scales={model_config.scales!r} repeats a scale; "
                     "give each scale once.")
  filters = _int_list(model_config, "filters", "32,64,128,256")
  if len(filters) != len(KERNELS):
    raise ValueError(f"config.model.filters={model_config.filters!r} must give one number per "
                     f"encoder level ({len(KERNELS)}), e.g. --config.model.filters=32,64,128,256.")
  for field in ("gap", "steps", "score_stride"):
    _positive_int(model_config, field)
  if model_config.score_mode not in SCORE_MODES:
    raise ValueError(f"config.model.score_mode={model_config.score_mode!r}; use "
                     f"{' or '.join(SCORE_MODES)}.")
  score_scales = model_config.get("score_scales", "")
  if score_scales:
    chosen = _int_list(model_config, "score_scales", str(scales[0]))
    if len(set(chosen)) != len(chosen) or not set(chosen) <= set(scales):
      raise ValueError(f"config.model.score_scales={score_scales!r} must name some of "
                       f"config.model.scales={model_config.scales!r}, each once, or be empty "
                       f"for all; e.g. --config.model.score_scales={scales[0]}.")
  threshold = model_config.residual_threshold
  if (isinstance(threshold, bool) or not isinstance(threshold, int | float)
      or not math.isfinite(threshold) or threshold < 0):
    raise ValueError(f"config.model.residual_threshold={threshold!r} must be a finite "
                     "number >= 0.")


def defaults() -> ml_collections.ConfigDict:
  """The `config.model` section: MSCRED's defaults (the paper's and the reference code's).

  The window must be max(scales) + gap * (steps - 1): 100 with these defaults.
  """
  model = ml_collections.ConfigDict()
  model.name = "mscred"
  model.scales = "10,30,60"  # history lengths of the signature matrices
  model.gap = 10  # time points between the ConvLSTM's steps
  model.steps = 5
  model.filters = "32,64,128,256"  # the 4 encoder levels
  model.score_mode = "residual"  # residual | count (the paper's broken entries)
  model.residual_threshold = 0.005  # count: a broken entry's squared residual
  model.score_scales = ""  # scales the score reads: "" all; "10" the reference code's
  model.score_stride = 10  # score every 10th window; points in between hold
  return model


def build(model_config: ml_collections.ConfigDict, *, num_features: int, window: int):
  """The module for `config.model`; raises ValueError on a bad field or window."""
  _check_config(model_config)
  scales = parse_ints(model_config.scales)
  needed = required_window(scales, model_config.gap, model_config.steps)
  if window != needed:
    raise ValueError(
        f"config.data.window={window}, but MSCRED needs max(scales) + gap*(steps-1) = "
        f"{needed} (config.model.scales={model_config.scales!r}, gap={model_config.gap}, "
        f"steps={model_config.steps}); set --config.data.window={needed} or change those fields.")
  return MSCRED(
      num_features=num_features,
      scales=scales,
      gap=model_config.gap,
      steps=model_config.steps,
      filters=parse_ints(model_config.filters),
      score_mode=model_config.score_mode,
      residual_threshold=float(model_config.residual_threshold),
      score_scales=parse_ints(model_config.score_scales) if model_config.get("score_scales")
      else ())


def score_stride(model_config: ml_collections.ConfigDict) -> int:
  """Score every `config.model.score_stride`-th window (the paper scores every gap-th point)."""
  return _positive_int(model_config, "score_stride")


def loss(model, params, windows, *, rng, train):
  """Mean squared error of the reconstructed last-step signature matrices."""
  del rng
  out = model.apply({"params": params}, windows, train=train)
  mse = jnp.mean(jnp.square(out["reconstruction"] - out["target"]))
  return mse, {"mse": mse}


def squared_residual(model, params, windows) -> jax.Array:
  """(B, D, D, n_scales): the last step's squared residual per scale."""
  out = model.apply({"params": params}, windows)
  return jnp.square(out["target"] - out["reconstruction"])


def residual_matrices(model, params, windows, *, rng) -> jax.Array:
  """(B, D, D): the last step's squared residual, summed over the scales."""
  del rng
  return squared_residual(model, params, windows).sum(axis=-1)


def score(model, params, windows, *, rng):
  """(B, 1, D): per feature i, row i's squared residual total or count of broken entries,
  over the scales `model.score_scales` names (all when empty)."""
  del rng
  residual = squared_residual(model, params, windows)
  if model.score_scales:
    residual = residual[..., [model.scales.index(scale) for scale in model.score_scales]]
  if model.score_mode == "count":
    residual = (residual > model.residual_threshold).astype(jnp.float32)
  return residual.sum(axis=(2, 3))[:, None, :]


HOOKS = Hooks(score_stride=score_stride, residual_matrices=residual_matrices)
