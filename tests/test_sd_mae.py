"""The self-distilled masked autoencoder: leakage, masks, distillation, learning, config checks.

The models here have one small encoder block and windows of 4 patches of 4
points, which keeps the compiles short; the default config takes a training
step in tests/test_configs.py.
"""

import functools
import re

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from configs import common
from tsad_jax.models import sd_mae

BATCH, PATCH, PATCHES, FEATURES = 4, 4, 4, 3
WINDOW = PATCH * PATCHES


def _model_config(**overrides) -> ml_collections.ConfigDict:
  config = common.get_config("sd_mae").model
  config.update(dict(d_model=16, nhead=2, num_encoder_layers=1, dim_feedforward=32,
                     dropout=0.0, num_patches=PATCHES, patch_size=PATCH, mask_last_n=PATCH,
                     masking_ratio=0.5))
  config.update(overrides)
  return config


def _build(**overrides):
  return sd_mae.build(_model_config(**overrides), num_features=FEATURES, window=WINDOW)


@functools.partial(jax.jit, static_argnums=0)
def _embedding_params(model):
  """Initial parameters of `model`'s patch embedding only (and the mask token)."""
  return model.init(jax.random.PRNGKey(0), jnp.zeros((1, WINDOW, FEATURES)),
                    method=model.embed)["params"]


@functools.cache
def _params(patchify_mode: str = "linear"):
  """Initial parameters of the model with `patchify_mode` and the other fields of `_build()`.

  The modes differ in the patch embedding only, so one full init (a slow compile) serves
  them all: each other mode swaps in its own embedding's initial parameters.
  """
  params = jax.jit(_build().init)(jax.random.PRNGKey(0), jnp.zeros((1, WINDOW, FEATURES)))
  embedding = _embedding_params(_build(patchify_mode=patchify_mode))
  return {**params["params"], "patch_embedding": embedding["patch_embedding"]}


@functools.partial(jax.jit, static_argnums=(0, 1))
def _apply(model, train, params, windows, key):
  return model.apply({"params": params}, windows, train=train,
                     rngs={"sample": key, "dropout": key})


@functools.partial(jax.jit, static_argnums=0)
def _embed(model, params, windows):
  """(B, W, D) -> (B, N, d_model) patch tokens, before masking and positions."""
  return model.apply({"params": params}, windows, method=model.embed)


@functools.partial(jax.jit, static_argnums=0)
def _score(model, params, windows):
  return sd_mae.score(model, params, windows, rng=None)


def _windows(seed: int = 0) -> jax.Array:
  return jnp.asarray(
      np.random.default_rng(seed).normal(size=(BATCH, WINDOW, FEATURES)), jnp.float32)


def _changed_tokens(mode: str, patch: int) -> list[int]:
  """The patches whose embedding moves when only patch `patch`'s points change."""
  model = _build(patchify_mode=mode)
  windows = _windows()
  changed = windows.at[:, patch * PATCH:(patch + 1) * PATCH].add(1.0)
  params = _embedding_params(model)
  difference = jnp.abs(_embed(model, params, changed) - _embed(model, params, windows))
  return [int(i) for i in np.flatnonzero(np.asarray(jnp.max(difference, axis=(0, 2))) > 0.0)]


@pytest.mark.parametrize("mode", ["linear", "patch_cnn"])
def test_patch_embeddings_do_not_leak_across_patches(mode):
  for patch in range(PATCHES):
    assert _changed_tokens(mode, patch) == [patch]


def test_cnn_first_leaks_into_neighbouring_patches():
  # The whole-window CNN's kernels cross patch borders, so the check above can fail.
  assert _changed_tokens("cnn_first", 1) == [0, 1, 2]
  assert _changed_tokens("cnn_first", PATCHES - 1) == [PATCHES - 2, PATCHES - 1]


def _patch_mask(model, *, train: bool, batch: int, seed: int = 0) -> np.ndarray:
  """The (batch, N) mask `model` draws; init runs only what it touches (the mask token)."""
  rngs = {"params": jax.random.PRNGKey(0), "sample": jax.random.PRNGKey(seed)}
  return np.asarray(model.init_with_output(rngs, batch, train=train,
                                           method=model.patch_mask)[0])


def test_random_patch_mask_hides_exactly_k_and_the_forced_patches():
  always = sd_mae.last_patch_mask(25, 2)
  mask = np.asarray(sd_mae.random_patch_mask(
      jax.random.PRNGKey(0), batch=2000, num_patches=25, num_masked=10, always=always))
  assert mask.shape == (2000, 25)
  np.testing.assert_array_equal(mask.sum(axis=1), 10)
  assert mask[:, -2:].all()
  # The other 8 of each row are spread uniformly over the other 23 patches.
  np.testing.assert_allclose(mask[:, :-2].mean(axis=0), 8 / 23, atol=0.05)
  free = np.asarray(sd_mae.random_patch_mask(
      jax.random.PRNGKey(0), batch=2000, num_patches=25, num_masked=10))
  np.testing.assert_array_equal(free.sum(axis=1), 10)
  np.testing.assert_allclose(free.mean(axis=0), 10 / 25, atol=0.05)


@pytest.mark.parametrize("train_mask_last", [True, False])
def test_training_masks_hide_the_configured_fraction(train_mask_last):
  config = _model_config(num_patches=8, patch_size=2, mask_last_n=2, masking_ratio=0.4,
                         train_mask_last=train_mask_last)
  model = sd_mae.build(config, num_features=FEATURES, window=WINDOW)
  assert model.num_masked == round(0.4 * 8) == 3
  masks = [_patch_mask(model, train=True, batch=64, seed=seed) for seed in range(2)]
  for mask in masks:
    assert mask.shape == (64, 8)
    np.testing.assert_array_equal(mask.sum(axis=1), 3)
  assert masks[0][:, -1].all() == train_mask_last
  assert len({row.tobytes() for row in masks[0]}) > 1  # each window draws its own mask
  assert not np.array_equal(masks[0], masks[1])  # and a new key new masks


@pytest.mark.parametrize("mask_last_n,hidden", [(PATCH, [3]), (PATCH + 1, [2, 3])])
def test_scoring_masks_the_patches_covering_the_last_points(mask_last_n, hidden):
  expected = np.zeros((BATCH, PATCHES), bool)
  expected[:, hidden] = True
  model = _build(mask_last_n=mask_last_n)
  for seed in range(2):  # the "sample" stream plays no part
    np.testing.assert_array_equal(
        _patch_mask(model, train=False, batch=BATCH, seed=seed), expected)


@pytest.mark.parametrize("mode", ["linear", "patch_cnn"])
def test_scoring_never_sees_the_last_points(mode):
  model, params = _build(patchify_mode=mode), _params(mode)
  windows = _windows()
  first = _apply(model, False, params, windows, jax.random.PRNGKey(0))
  second = _apply(model, False, params, windows.at[:, -PATCH:].set(5.0), jax.random.PRNGKey(0))
  np.testing.assert_array_equal(first["mask"][:, -1], True)
  for head in ("teacher", "student"):  # the score's target moves, the predictions do not
    np.testing.assert_array_equal(first[head], second[head])


def _loss(model, params, windows, key):
  return sd_mae.loss(model, params, windows, rng=key, train=True)


@functools.partial(jax.jit, static_argnums=0)
def _loss_and_distill_grads(model, params, windows, key):
  """Loss, metrics, and the gradient of the discrepancy term alone."""
  value, metrics = _loss(model, params, windows, key)
  grads = jax.grad(lambda p: _loss(model, p, windows, key)[1]["discrepancy"])(params)
  return value, metrics, grads


def _largest(tree) -> float:
  return max(float(jnp.max(jnp.abs(leaf))) for leaf in jax.tree.leaves(tree))


def test_discrepancy_is_zero_for_equal_teacher_and_student():
  model, params = _build(), _params()
  windows, key = _windows(), jax.random.PRNGKey(3)
  _, metrics, _ = _loss_and_distill_grads(model, params, windows, key)
  assert float(metrics["discrepancy"]) > 0.0  # the two heads start from different draws
  twins = {**params, "student": params["teacher"]}
  value, metrics, grads = _loss_and_distill_grads(model, twins, windows, key)
  assert float(metrics["discrepancy"]) == 0.0
  assert float(value) == float(metrics["recon_mse"]) > 0.0
  assert _largest(grads) == 0.0
  out = _apply(model, False, twins, windows, jax.random.PRNGKey(0))
  np.testing.assert_array_equal(out["teacher"], out["student"])


def test_distillation_does_not_train_the_teacher():
  model, params = _build(), _params()
  _, _, grads = _loss_and_distill_grads(model, params, _windows(), jax.random.PRNGKey(3))
  assert _largest(grads["teacher"]) == 0.0  # stop_gradient on the teacher's output
  assert _largest(grads["student"]) > 0.0
  assert _largest(grads["blocks_0"]) > 0.0  # the shared encoder learns from both terms


@pytest.mark.parametrize("score_points,mask_last_n,points", [
    ("last", PATCH, 1), ("last", PATCH + 2, 1), ("masked", PATCH, PATCH),
    ("masked", PATCH + 2, PATCH + 2), ("masked", 1, 1)])
def test_score_reads_the_chosen_last_points(score_points, mask_last_n, points):
  fields = {"score_points": score_points, "mask_last_n": mask_last_n}
  model, params = _build(**fields), _params()
  windows = _windows()
  scores = _score(model, params, windows)
  assert not sd_mae.SCORES_EVERY_POINT
  assert scores.shape == (BATCH, 1, FEATURES) and bool(jnp.all(scores >= 0.0))
  out = _apply(model, False, params, windows, jax.random.PRNGKey(0))
  teacher, student = (np.asarray(out[head])[:, WINDOW - points:] for head in ("teacher", "student"))
  recon = np.square(teacher - np.asarray(windows)[:, WINDOW - points:]).mean(1, keepdims=True)
  gap = np.square(teacher - student).mean(1, keepdims=True)
  weighted = _score(_build(**fields, recon_weight=2.0, discrepancy_weight=0.5), params, windows)
  np.testing.assert_allclose(scores, recon + gap, rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(weighted, 2.0 * recon + 0.5 * gap, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("mode", sd_mae.PATCHIFY_MODES)
def test_training_steps_lower_the_loss(mode):
  model, params = _build(patchify_mode=mode), _params(mode)
  steps = np.linspace(0.0, 4.0 * np.pi, WINDOW)[None, :, None]
  scales = np.array([0.5, 1.0, 1.5, 2.0])[:, None, None]
  windows = jnp.asarray(scales * np.sin(steps + np.arange(FEATURES)), jnp.float32)
  tx = optax.adam(1e-2)

  @jax.jit
  def step(params, opt_state, key):
    (value, _), grads = jax.value_and_grad(_loss, argnums=1, has_aux=True)(
        model, params, windows, key)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, value

  opt_state = tx.init(params)
  losses = []
  for i in range(40):
    params, opt_state, value = step(params, opt_state, jax.random.PRNGKey(i))
    losses.append(float(value))
  assert np.mean(losses[-5:]) < 0.25 * np.mean(losses[:5])


@pytest.mark.parametrize("overrides,message", [
    ({"num_patches": 5}, "config.model.num_patches=5 x config.model.patch_size=4 = 20 must "
                         "equal config.data.window=16: set num_patches to window / patch_size"),
    ({"patchify_mode": "conv"}, "config.model.patchify_mode='conv'; use one of linear, "
                                "cnn_first, patch_cnn"),
    ({"masking_ratio": 0.0}, "config.model.masking_ratio=0.0 must be a number in (0, 1)"),
    ({"masking_ratio": 1.0}, "config.model.masking_ratio=1.0 must be a number in (0, 1)"),
    ({"masking_ratio": 0.1}, "config.model.masking_ratio=0.1 hides round(0.1 x 4) = 0 of"),
    ({"mask_last_n": 17}, "config.model.mask_last_n=17 is larger than the window "
                          "(config.data.window=16)"),
    ({"mask_last_n": 16}, "config.model.mask_last_n=16 hides every patch at score time"),
    ({"mask_last_n": 12, "masking_ratio": 0.5},
     "config.model.masking_ratio=0.5 hides 2 patches in training, fewer than the 3"),
    ({"mask_last_n": 0}, "config.model.mask_last_n=0 must be a positive integer"),
    ({"score_points": "all"}, "config.model.score_points='all'; use one of last, masked"),
    ({"nhead": 3}, "config.model.nhead=3 must divide config.model.d_model=16"),
    ({"dropout": 1.0}, "config.model.dropout=1.0 must be a number in [0, 1)"),
    ({"distill_weight": -1.0}, "config.model.distill_weight=-1.0 must be a finite number >= 0"),
])
def test_bad_config_values_raise(overrides, message):
  with pytest.raises(ValueError, match=re.escape(message)):
    _build(**overrides)


def test_smd_config_defaults():
  from configs import smd_sdmae
  config = smd_sdmae.get_config("machine-1-6")
  assert config.model.num_patches * config.model.patch_size == config.data.window == 100
  assert config.model.mask_last_n == config.model.patch_size
  model = sd_mae.build(config.model, num_features=38, window=config.data.window)
  assert (model.num_masked, model.num_last) == (10, 1)
