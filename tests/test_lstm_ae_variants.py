"""LSTM-AE's variants: plain ("ae"), with a classification ("clf") or a prediction ("pred") head."""

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
from numpy.testing import assert_allclose
from numpy.testing import assert_array_equal
import optax
import pytest

from configs import smd_lstmae_clf
from configs import smd_lstmae_pred
from configs import tiny
from tsad_jax import train
from tsad_jax.metrics import ranking
from tsad_jax.models import lstm_ae

WINDOW, FEATURES = 8, 2


def _windows(batch, seed=0):
  """Flat series at a random level in [0.2, 0.8], plus noise: (batch, WINDOW, FEATURES).

  `seed`: an int, or a PRNG key (inside jitted code).
  """
  key = jax.random.PRNGKey(seed) if isinstance(seed, int) else seed
  level_key, noise_key = jax.random.split(key)
  level = jax.random.uniform(level_key, (batch, 1, FEATURES), minval=0.2, maxval=0.8)
  return level + 0.02 * jax.random.normal(noise_key, (batch, WINDOW, FEATURES))


def _model(variant, **fields):
  config = tiny.get_config()
  config.model.variant = variant
  config.model.hidden_size = 32
  config.model.update(fields)
  model = lstm_ae.build(config.model, num_features=FEATURES, window=WINDOW)
  params = train.init_params(model, key=jax.random.PRNGKey(0), window=WINDOW,
                             num_features=FEATURES)
  return model, params


@functools.cache
def _trained(variant):
  """(model, initial params, params after 300 Adam steps (cosine decay), validation losses).

  Each step draws a fresh batch of 32 windows; the losses (train=False, as
  train.py validates) are of 16 held-out windows before and after training,
  and of one window alone. "pred" forecasts 2 points, so the lookback differs
  from the window by more than one. One jitted call: compiling is the slow part.
  """
  model, params = _model(variant, **({"pred_steps": 2} if variant == "pred" else {}))
  tx = optax.adam(optax.cosine_decay_schedule(1e-2, 300))
  held_out = _windows(16, 2)
  eval_loss = lambda p, x: lstm_ae.loss(model, p, x, rng=jax.random.PRNGKey(5), train=False)[0]

  def step(carry, key):
    params, opt_state = carry
    data_key, loss_key = jax.random.split(key)
    windows = _windows(32, data_key)
    loss_fn = lambda p: lstm_ae.loss(model, p, windows, rng=loss_key, train=True)[0]
    updates, opt_state = tx.update(jax.grad(loss_fn)(params), opt_state)
    return (optax.apply_updates(params, updates), opt_state), None

  @jax.jit
  def fit(params):
    keys = jax.random.split(jax.random.PRNGKey(1), 300)
    (trained, _), _ = jax.lax.scan(step, (params, tx.init(params)), keys)
    losses = {"before": eval_loss(params, held_out), "after": eval_loss(trained, held_out),
              "one_window": eval_loss(trained, held_out[:1])}
    return trained, losses

  trained, losses = fit(params)
  return model, params, trained, {name: float(value) for name, value in losses.items()}


@pytest.mark.parametrize("variant", lstm_ae.VARIANTS)
def test_variant_trains_and_scores(variant):
  model, _, trained, losses = _trained(variant)
  assert losses["after"] < 0.5 * losses["before"]
  assert np.isfinite(losses["one_window"])  # validation takes one window at a time
  scores = jax.jit(lambda p, x: lstm_ae.score(model, p, x, rng=None))(trained, _windows(16))
  assert lstm_ae.SCORES_EVERY_POINT and scores.shape == (16, WINDOW, FEATURES)
  assert bool(jnp.all(jnp.isfinite(scores))) and bool(jnp.all(scores >= 0))


def test_default_variant_loss_is_the_reconstruction_mse():
  model, params, _, _ = _trained("ae")
  assert model.lookback == WINDOW and set(params) == {"encoder_cell", "decoder_cell", "output"}
  windows = _windows(16)
  recon = model.apply({"params": params}, windows)
  expected = np.mean(np.square(np.asarray(recon, np.float64) - np.asarray(windows, np.float64)))
  for train_mode in (False, True):  # no dropout in tiny: both modes are the same function
    got, parts = lstm_ae.loss(model, params, windows, rng=jax.random.PRNGKey(0), train=train_mode)
    assert_allclose(float(got), expected, rtol=1e-6)
    assert set(parts) == {"mse"}
  assert_allclose(lstm_ae.score(model, params, windows, rng=None), np.square(recon - windows))


def test_config_without_variant_fields_builds_the_plain_autoencoder():
  config = tiny.get_config()
  for field in ("variant", "pred_steps", "clf_weight", "clf_inject_ratio"):
    del config.model[field]  # a run saved before the variants existed
  model = lstm_ae.build(config.model, num_features=FEATURES, window=WINDOW)
  assert model.variant == "ae" and model.lookback == WINDOW


def test_pred_reads_only_the_lookback():
  model, params, _, _ = _trained("pred")
  assert model.lookback == WINDOW - 2
  assert params["predictor"]["kernel"].shape[-1] == 2 * FEATURES
  windows = _windows(16)
  changed = windows.at[:, -2:].add(3.0)
  recon, forecast = lstm_ae.predict(model, params, windows)
  assert recon.shape == (16, WINDOW - 2, FEATURES) and forecast.shape == (16, 2, FEATURES)
  for same, other in zip((recon, forecast), lstm_ae.predict(model, params, changed), strict=True):
    assert_array_equal(np.asarray(same), np.asarray(other))
  with pytest.raises(ValueError, match="reads 6 and forecasts 2"):
    lstm_ae.predict(model, params, windows[:, 1:])


def test_pred_score_of_the_last_point_rises_when_it_is_perturbed():
  model, _, params, _ = _trained("pred")
  windows = _windows(16)
  score = lambda x: np.asarray(lstm_ae.score(model, params, x, rng=None))
  before, after = score(windows), score(windows.at[:, -1, 1].add(5.0))
  assert np.all(after[:, -1, 1] > before[:, -1, 1] + 1.0)
  assert_array_equal(np.delete(after, 1, axis=2), np.delete(before, 1, axis=2))
  assert_array_equal(after[:, :-1], before[:, :-1])


@pytest.mark.parametrize("ratio, count", [(0.5, 5), (0.0, 0), (1.0, 10), (0.25, 3)])
def test_injection_marks_exactly_the_injected_windows(ratio, count):
  windows = _windows(10)
  injected, labels = lstm_ae.inject_anomalies(windows, jax.random.PRNGKey(3), ratio=ratio,
                                              scale=0.5)
  difference = np.asarray(injected - windows)
  changed = np.abs(difference) > 0
  assert_array_equal(np.asarray(labels), changed.any(axis=(1, 2)).astype(np.float32))
  assert int(labels.sum()) == count
  assert np.all(changed.any(axis=1).sum(axis=1) == labels)  # one feature per injected window
  sizes = np.abs(difference[changed])
  assert np.all((sizes > 0.25 - 1e-6) & (sizes < 0.75 + 1e-6))  # 0.5 x U(0.5, 1.5)


def test_trained_classifier_ranks_injected_windows_above_clean_ones():
  model, params, trained, _ = _trained("clf")
  held_out, labels = lstm_ae.inject_anomalies(_windows(128, 3), jax.random.PRNGKey(11),
                                              ratio=0.5, scale=0.5)
  _, logits = model.apply({"params": trained}, held_out)
  _, untrained_logits = model.apply({"params": params}, held_out)
  auc = lambda scores: ranking.auc_roc(np.asarray(labels), np.asarray(scores))
  assert auc(logits) > 0.9 and auc(logits) > auc(untrained_logits)


@pytest.mark.parametrize("fields, message", [
    ({"variant": "vae"}, "config.model.variant='vae'"),
    ({"variant": "pred", "pred_steps": 0}, "config.model.pred_steps=0"),
    ({"variant": "pred", "pred_steps": WINDOW}, "config.model.pred_steps=8 must be less"),
    ({"clf_inject_ratio": 1.5}, "config.model.clf_inject_ratio=1.5"),
    ({"clf_inject_ratio": -0.1}, "config.model.clf_inject_ratio=-0.1"),
    ({"clf_weight": -1.0}, "config.model.clf_weight=-1.0"),
    ({"clf_inject_scale": 0.0}, "config.model.clf_inject_scale=0"),
])
def test_bad_config_values_raise(fields, message):
  config = tiny.get_config()
  config.model.update(fields)
  with pytest.raises(ValueError, match=re.escape(message)):
    lstm_ae.build(config.model, num_features=FEATURES, window=WINDOW)


def test_smd_variant_configs():
  pred, clf = smd_lstmae_pred.get_config(), smd_lstmae_clf.get_config("machine-1-6")
  assert (pred.model.variant, pred.data.entity) == ("pred", "machine-1-1")
  assert (clf.model.variant, clf.data.entity) == ("clf", "machine-1-6")
  assert lstm_ae.build(pred.model, num_features=38, window=100).lookback == 99


def test_clf_training_loss_is_clean_reconstruction_plus_weighted_bce():
  model, params, _, _ = _trained("clf")
  model = model.clone(clf_weight=0.3)
  windows, rng = _windows(16), jax.random.PRNGKey(4)
  got, parts = lstm_ae.loss(model, params, windows, rng=rng, train=True)
  inject_rng, _ = jax.random.split(rng)  # as the loss splits it
  injected, labels = lstm_ae.inject_anomalies(windows, inject_rng, ratio=0.5, scale=0.5)
  recon, logits = model.apply({"params": params}, injected)
  clean = np.asarray(labels) == 0
  mse = np.mean(np.square(np.asarray(recon - injected))[clean])
  p = np.asarray(jax.nn.sigmoid(logits), np.float64)
  bce = -np.mean(np.where(labels == 1, np.log(p), np.log1p(-p)))
  assert_allclose([parts["mse"], parts["bce"], got], [mse, bce, mse + 0.3 * bce], rtol=1e-5)
