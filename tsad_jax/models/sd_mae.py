"""Self-distilled masked autoencoder (SD-MAE): predict masked patches twice, score the disagreement.

A window (B, W, D) of W = num_patches * patch_size points is cut into
`num_patches` patches of `patch_size` consecutive points, and each patch
becomes one d_model token by one of three `patchify_mode`s:
  linear: the patch's P x D values, flattened and projected (the MAE's patch
      embedding);
  cnn_first: a two-layer 1-D CNN (kernel 3, GELU) over the whole window, then
      its output patchified and projected. The kernels reach across patch
      borders, so a token also holds up to two points of each neighbouring
      patch, masked or not;
  patch_cnn: the same CNN run on each patch alone (zero padding at the patch's
      own borders), so a token depends on its own patch only.
The tokens of masked patches are replaced by one learnt mask token, a fixed
sinusoidal position code is added to every token, and pre-LayerNorm
Transformer encoder blocks (those of transformer.py) mix the tokens. Two
decoders of the same shape, a teacher and a student (Dense, GELU, Dense), map
every token back to its patch's P x D values.

Masks (True = hidden), one per patch:
  training (train=True): exactly k = round(masking_ratio * num_patches)
      patches per window, drawn from the "sample" rng stream. With
      `train_mask_last` the patches covering the last `mask_last_n` points are
      always among the k (the task the score asks for), the others uniform at
      random; without it all k are uniform at random.
  evaluation (train=False: validation loss and scores): the patches covering
      the last `mask_last_n` points and nothing else, the same in every window.

Loss: the teacher's mean squared error on the masked patches (visible patches
are not scored, as in the MAE) plus `distill_weight` x the mean squared
difference between stop_gradient(teacher) and student on the same patches.
The teacher learns to reconstruct; the student learns only to follow the
teacher (the shared encoder learns from both terms). With equal teacher and
student parameters the two outputs, and so the discrepancy, are exactly equal.

Score of a window, per feature, given to its last point: `recon_weight` x
(teacher - x)^2 + `discrepancy_weight` x (teacher - student)^2 with the
patches covering the last `mask_last_n` points hidden, so the model predicts
them from the points before them. `score_points` says which of them it reads:
"last", the window's last point; "masked", the mean over the last
`mask_last_n` points, as the seed's evaluator scores a window. The mean
divides a one-point spike's error by mask_last_n (see bench/accuracy_notes.md).
On data like the training data the student has learnt to agree with the
teacher; elsewhere the two heads drift apart as well as missing the points.
"""

import math
import numbers

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from tsad_jax.models import Hooks
from tsad_jax.models import transformer

TITLE = "SD-MAE"
SCORING_FIELDS = ("recon_weight", "discrepancy_weight", "score_points")
SCORES_EVERY_POINT = False
HOOKS = Hooks()
PATCHIFY_MODES = ("linear", "cnn_first", "patch_cnn")
SCORE_POINTS = ("last", "masked")
CNN_KERNEL_SIZE = 3


def patchify(windows: jax.Array, patch_size: int) -> jax.Array:
  """(B, W, C) -> (B, W / patch_size, patch_size, C): consecutive points grouped into patches."""
  batch, window, channels = windows.shape
  return windows.reshape(batch, window // patch_size, patch_size, channels)


def unpatchify(patches: jax.Array) -> jax.Array:
  """(B, N, P, C) -> (B, N * P, C), the inverse of `patchify`."""
  batch, num_patches, patch_size, channels = patches.shape
  return patches.reshape(batch, num_patches * patch_size, channels)


def num_masked_patches(num_patches: int, masking_ratio: float) -> int:
  """Patches hidden per window in training: round(masking_ratio * num_patches)."""
  return round(masking_ratio * num_patches)


def num_last_patches(patch_size: int, mask_last_n: int) -> int:
  """Patches that cover the last `mask_last_n` points: ceil(mask_last_n / patch_size)."""
  return -(-mask_last_n // patch_size)


def last_patch_mask(num_patches: int, num_last: int) -> np.ndarray:
  """(N,) bool: True on the last `num_last` patches."""
  return np.arange(num_patches) >= num_patches - num_last


def random_patch_mask(key: jax.Array, *, batch: int, num_patches: int, num_masked: int,
                      always: np.ndarray | None = None) -> jax.Array:
  """(B, N) bool: exactly `num_masked` True per row, uniform at random.

  Patches marked in `always` ((N,) bool; at most `num_masked` of them) are in
  every row's choice; the rest are filled at random from the other patches.
  Each row ranks its patches by uniform noise (forced ones first, at -1) and
  hides the `num_masked` lowest ranks.
  """
  noise = jax.random.uniform(key, (batch, num_patches))
  if always is not None:
    noise = jnp.where(jnp.asarray(always), -1.0, noise)
  ranks = jnp.argsort(jnp.argsort(noise, axis=-1), axis=-1)
  return ranks < num_masked


def point_mask(patch_mask: jax.Array, patch_size: int) -> jax.Array:
  """(B, N) per-patch mask -> (B, N * patch_size) per-point mask."""
  return jnp.repeat(patch_mask, patch_size, axis=-1)


class ConvStack(nn.Module):
  """Two 'SAME' 1-D convs, GELU, along the second-to-last axis: (..., L, C) -> (..., L, F).

  Every leading axis is a batch axis, so on (B, N, P, D) patches each patch is
  convolved alone, and zero padding stands in for its neighbours' points.
  """

  features: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    for i in range(2):
      x = nn.gelu(nn.Conv(self.features, (CNN_KERNEL_SIZE,), name=f"conv_{i}")(x))
    return x


class PatchEmbedding(nn.Module):
  """Window (B, W, D) -> one token per patch (B, N, d_model), by `mode` (see the module doc)."""

  mode: str
  patch_size: int
  d_model: int

  @nn.compact
  def __call__(self, windows: jax.Array) -> jax.Array:
    if self.mode == "cnn_first":
      patches = patchify(ConvStack(self.d_model, name="cnn")(windows), self.patch_size)
    elif self.mode == "patch_cnn":
      patches = ConvStack(self.d_model, name="cnn")(patchify(windows, self.patch_size))
    else:
      patches = patchify(windows, self.patch_size)
    flat = patches.reshape(patches.shape[:2] + (-1,))
    return nn.Dense(self.d_model, name="projection")(flat)


class PatchDecoder(nn.Module):
  """Tokens (B, N, d_model) -> points (B, N * patch_size, num_features)."""

  num_features: int
  patch_size: int
  hidden: int

  @nn.compact
  def __call__(self, tokens: jax.Array) -> jax.Array:
    h = nn.gelu(nn.Dense(self.hidden, name="hidden")(tokens))
    out = nn.Dense(self.patch_size * self.num_features, name="output")(h)
    return unpatchify(out.reshape(out.shape[:2] + (self.patch_size, self.num_features)))


class SelfDistilledMAE(nn.Module):
  """Window (B, W, D) -> {"teacher": (B, W, D), "student": (B, W, D), "mask": (B, N) bool}.

  Both outputs hold every point of the window; the losses and scores read the
  masked points only. `train` chooses the mask (see `patch_mask`) and turns dropout on.
  """

  num_features: int
  num_patches: int
  patch_size: int
  patchify_mode: str
  d_model: int
  nhead: int
  num_encoder_layers: int
  dim_feedforward: int
  dropout: float
  num_masked: int  # patches hidden per window in training
  mask_last_n: int  # the last points hidden at score time
  score_points: str  # "last" or "masked" (see the module docstring)
  train_mask_last: bool
  distill_weight: float
  recon_weight: float
  discrepancy_weight: float

  @property
  def num_last(self) -> int:
    """Patches covering the last `mask_last_n` points."""
    return num_last_patches(self.patch_size, self.mask_last_n)

  def setup(self):
    self.patch_embedding = PatchEmbedding(self.patchify_mode, self.patch_size, self.d_model)
    self.mask_token = self.param("mask_token", nn.initializers.normal(0.02), (self.d_model,))
    self.blocks = [
        transformer.EncoderBlock(self.d_model, self.nhead, self.dim_feedforward, self.dropout)
        for _ in range(self.num_encoder_layers)]
    self.final_norm = nn.LayerNorm()
    self.teacher = PatchDecoder(self.num_features, self.patch_size, self.d_model)
    self.student = PatchDecoder(self.num_features, self.patch_size, self.d_model)

  def embed(self, windows: jax.Array) -> jax.Array:
    """(B, W, D) -> (B, N, d_model) patch tokens, before masking and positions."""
    return self.patch_embedding(windows)

  def patch_mask(self, batch: int, *, train: bool) -> jax.Array:
    """(B, N) bool: random in training (the "sample" stream), the last patches otherwise."""
    last = last_patch_mask(self.num_patches, self.num_last)
    if not train:
      return jnp.broadcast_to(jnp.asarray(last), (batch, self.num_patches))
    mask = random_patch_mask(self.make_rng("sample"), batch=batch, num_patches=self.num_patches,
                             num_masked=self.num_masked,
                             always=last if self.train_mask_last else None)
    self.sow("noise", "mask", mask)  # for the PyTorch twin (interop/noise.py)
    return mask

  def __call__(self, windows: jax.Array, *, train: bool = False) -> dict[str, jax.Array]:
    tokens = self.embed(windows)
    mask = self.patch_mask(windows.shape[0], train=train)
    tokens = jnp.where(mask[..., None], self.mask_token, tokens)
    tokens = tokens + jnp.asarray(transformer.sinusoidal_positions(self.num_patches, self.d_model))
    for block in self.blocks:
      tokens = block(tokens, train=train)
    tokens = self.final_norm(tokens)
    return {"teacher": self.teacher(tokens), "student": self.student(tokens), "mask": mask}


def _is_number(value) -> bool:
  return (isinstance(value, numbers.Real) and not isinstance(value, bool)
          and math.isfinite(value))


def _check_config(model_config: ml_collections.ConfigDict, window: int) -> None:
  """Raises ValueError naming the first `config.model` (or `data.window`) field with a bad value."""
  transformer.check_positive_ints(
      model_config, ("d_model", "nhead", "num_encoder_layers", "dim_feedforward", "num_patches",
                     "patch_size", "mask_last_n"))
  if model_config.d_model % model_config.nhead:
    raise ValueError(f"config.model.nhead={model_config.nhead} must divide "
                     f"config.model.d_model={model_config.d_model}.")
  if model_config.score_points not in SCORE_POINTS:
    raise ValueError(f"config.model.score_points={model_config.score_points!r}; "
                     f"use one of {', '.join(SCORE_POINTS)}.")
  if model_config.patchify_mode not in PATCHIFY_MODES:
    raise ValueError(f"config.model.patchify_mode={model_config.patchify_mode!r}; "
                     f"use one of {', '.join(PATCHIFY_MODES)}.")
  num_patches, patch_size = model_config.num_patches, model_config.patch_size
  if num_patches * patch_size != window:
    raise ValueError(
        f"config.model.num_patches={num_patches} x config.model.patch_size={patch_size} = "
        f"{num_patches * patch_size} must equal config.data.window={window}: set num_patches "
        f"to window / patch_size (or patch_size to window / num_patches).")
  ratio = model_config.masking_ratio
  if not _is_number(ratio) or not 0.0 < ratio < 1.0:
    raise ValueError(f"config.model.masking_ratio={ratio!r} must be a number in (0, 1).")
  dropout = model_config.dropout
  if not _is_number(dropout) or not 0.0 <= dropout < 1.0:
    raise ValueError(f"config.model.dropout={dropout!r} must be a number in [0, 1).")
  for field in ("distill_weight", "recon_weight", "discrepancy_weight"):
    value = model_config[field]
    if not _is_number(value) or value < 0.0:
      raise ValueError(f"config.model.{field}={value!r} must be a finite number >= 0.")
  if not isinstance(model_config.train_mask_last, bool):
    raise ValueError(
        f"config.model.train_mask_last={model_config.train_mask_last!r} must be True or False.")
  mask_last_n = model_config.mask_last_n
  if mask_last_n > window:
    raise ValueError(f"config.model.mask_last_n={mask_last_n} is larger than the window "
                     f"(config.data.window={window}); use at most window - patch_size.")
  num_last = num_last_patches(patch_size, mask_last_n)
  if num_last >= num_patches:
    raise ValueError(f"config.model.mask_last_n={mask_last_n} hides every patch at score time; "
                     f"use at most window - patch_size = {window - patch_size}.")
  num_masked = num_masked_patches(num_patches, ratio)
  if not 1 <= num_masked < num_patches:
    raise ValueError(
        f"config.model.masking_ratio={ratio} hides round({ratio} x {num_patches}) = {num_masked} "
        f"of config.model.num_patches={num_patches} patches; it must hide at least one and "
        "leave one visible.")
  if model_config.train_mask_last and num_masked < num_last:
    raise ValueError(
        f"config.model.masking_ratio={ratio} hides {num_masked} patches in training, fewer than "
        f"the {num_last} covering config.model.mask_last_n={mask_last_n} points that "
        "train_mask_last always hides: raise masking_ratio, lower mask_last_n, or set "
        "train_mask_last=False.")


def defaults() -> ml_collections.ConfigDict:
  """The `config.model` section: self-distilled masked autoencoder's defaults (the seed's).

  The window (the seed's seq_length) is data.window and must equal
  num_patches * patch_size: 100 with these defaults.
  """
  model = ml_collections.ConfigDict()
  model.name = "sd_mae"
  model.d_model = 64
  model.nhead = 4  # must divide d_model
  model.num_encoder_layers = 3
  model.dim_feedforward = 256
  model.dropout = 0.1
  model.num_patches = 25
  model.patch_size = 4
  model.patchify_mode = "linear"  # linear | cnn_first | patch_cnn
  model.masking_ratio = 0.4  # training hides round(0.4 * 25) = 10 patches per window
  model.mask_last_n = 4  # points hidden (as whole patches) when scoring: one patch
  model.train_mask_last = True  # training masks always include those last patches
  model.distill_weight = 1.0  # loss = teacher MSE + distill_weight * discrepancy
  model.recon_weight = 1.0  # score = recon_weight * (teacher - x)^2
  model.discrepancy_weight = 1.0  # + discrepancy_weight * (teacher - student)^2
  # which points of each window the score reads: "last" (its last point) or "masked" (the
  # mean over the last mask_last_n points, the seed's evaluator)
  model.score_points = "last"
  return model


def build(model_config: ml_collections.ConfigDict, *, num_features: int, window: int):
  """The module for `config.model`; raises ValueError on a bad field value."""
  _check_config(model_config, window)
  return SelfDistilledMAE(
      num_features=num_features,
      num_patches=model_config.num_patches,
      patch_size=model_config.patch_size,
      patchify_mode=model_config.patchify_mode,
      d_model=model_config.d_model,
      nhead=model_config.nhead,
      num_encoder_layers=model_config.num_encoder_layers,
      dim_feedforward=model_config.dim_feedforward,
      dropout=float(model_config.dropout),
      num_masked=num_masked_patches(model_config.num_patches, model_config.masking_ratio),
      mask_last_n=model_config.mask_last_n,
      score_points=model_config.score_points,
      train_mask_last=model_config.train_mask_last,
      distill_weight=float(model_config.distill_weight),
      recon_weight=float(model_config.recon_weight),
      discrepancy_weight=float(model_config.discrepancy_weight))


def masked_mean(values: jax.Array, points: jax.Array) -> jax.Array:
  """Mean of (B, W, D) `values` over the points where the (B, W) bool `points` is True."""
  weights = points[..., None].astype(values.dtype)
  return jnp.sum(values * weights) / (jnp.sum(weights) * values.shape[-1])


def discrepancy(teacher: jax.Array, student: jax.Array) -> jax.Array:
  """Elementwise (teacher - student)^2, with no gradient into the teacher."""
  return jnp.square(jax.lax.stop_gradient(teacher) - student)


def loss(model, params, windows, *, rng, train):
  """Teacher MSE + distill_weight x teacher/student discrepancy, both on the masked patches.

  Training masks are random (the "sample" stream); with train=False the last
  patches are masked, as when scoring, so the validation loss measures the
  scored task. Dropout draws from the "dropout" stream.
  """
  dropout_rng, sample_rng = jax.random.split(rng)
  out = model.apply({"params": params}, windows, train=train,
                    rngs={"dropout": dropout_rng, "sample": sample_rng})
  points = point_mask(out["mask"], model.patch_size)
  recon = masked_mean(jnp.square(out["teacher"] - windows), points)
  distill = masked_mean(discrepancy(out["teacher"], out["student"]), points)
  return recon + model.distill_weight * distill, {"recon_mse": recon, "discrepancy": distill}


def scored_points(model) -> slice:
  """The points of a window its score reads (`score_points`)."""
  return slice(-1 if model.score_points == "last" else -model.mask_last_n, None)


def score(model, params, windows, *, rng):
  """(B, 1, D): recon_weight (teacher - x)^2 + discrepancy_weight (teacher - student)^2, with
  the patches covering the last `mask_last_n` points hidden, at the last point or averaged
  over the masked last points (`score_points`)."""
  del rng
  out = model.apply({"params": params}, windows)
  points = scored_points(model)
  teacher, student = out["teacher"][:, points], out["student"][:, points]
  errors = (model.recon_weight * jnp.square(teacher - windows[:, points])
            + model.discrepancy_weight * jnp.square(teacher - student))
  return jnp.mean(errors, axis=1, keepdims=True)
