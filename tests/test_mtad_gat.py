"""MTAD-GAT: graph attention, heads and run modes, the combined score, a real SMD run."""

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from configs import common
from configs import smap_mtadgat
from configs import smd_mtadgat
from tsad_jax import experiment
from tsad_jax import summaries
from tsad_jax.detector import Detector
from tsad_jax.models import mtad_gat

BATCH, WINDOW, FEATURES = 4, 13, 5


def _model_config(**overrides) -> ml_collections.ConfigDict:
  config = common.get_config("mtad_gat").model
  config.update(dict(gru_hid_dim=16, fc_hid_dim=16, recon_hid_dim=16, fc_n_layers=2,
                     dropout=0.0))
  config.update(overrides)
  return config


def _build(**overrides):
  model = mtad_gat.build(_model_config(**overrides), num_features=FEATURES, window=WINDOW)
  params = model.init({"params": jax.random.PRNGKey(0)},
                      jnp.zeros((1, WINDOW - 1, FEATURES)))["params"]
  return model, params


def _windows(seed: int = 0, batch: int = BATCH) -> jax.Array:
  rng = np.random.default_rng(seed)
  return jnp.asarray(rng.random((batch, WINDOW, FEATURES)), jnp.float32)


def _attention(use_gatv2: bool, nodes: jax.Array, seed: int = 0):
  layer = mtad_gat.GraphAttention(embed_dim=6, use_gatv2=use_gatv2)
  params = layer.init(jax.random.PRNGKey(seed), nodes)
  return layer.apply(params, nodes)


@pytest.mark.parametrize("use_gatv2", [False, True])
def test_attention_weights_sum_to_one_over_neighbours(use_gatv2):
  nodes = jax.random.normal(jax.random.PRNGKey(1), (3, 7, 4))
  output, attention = _attention(use_gatv2, nodes)
  assert attention.shape == (3, 7, 7) and output.shape == (3, 7, 4)
  np.testing.assert_allclose(attention.sum(-1), 1.0, rtol=1e-6)
  assert bool(jnp.all(attention > 0))


def test_gat_attention_is_static_and_gatv2_dynamic():
  """GAT ranks the neighbours j the same way for every node i; GATv2 need not."""
  nodes = jax.random.normal(jax.random.PRNGKey(2), (1, 9, 4))
  _, gat = _attention(False, nodes)
  _, gatv2 = _attention(True, nodes)
  assert not np.allclose(gat, gatv2, atol=1e-3)
  gat_favourites = np.argmax(np.asarray(gat[0]), axis=-1)
  assert len(set(gat_favourites)) == 1  # the same favourite neighbour for every node
  v2_orders = {tuple(np.argsort(np.asarray(row))) for row in gatv2[0]}
  assert len(v2_orders) > 1


def test_gatv2_scores_and_their_gradients_equal_the_pairwise_definition():
  keys = jax.random.split(jax.random.PRNGKey(3), 4)
  source, target = (jax.random.normal(k, (2, 6, 5)) for k in keys[:2])
  a = jax.random.normal(keys[2], (5,))
  weights = jax.random.normal(keys[3], (2, 6, 6))

  def direct(s, t, a):
    return jax.nn.leaky_relu(s[..., :, None, :] + t[..., None, :, :], 0.2) @ a

  ours = functools.partial(mtad_gat.gatv2_scores, slope=0.2)
  np.testing.assert_allclose(ours(source, target, a), direct(source, target, a),
                             rtol=1e-5, atol=1e-6)
  grad = lambda f: jax.grad(lambda *x: jnp.sum(weights * f(*x)), argnums=(0, 1, 2))
  for got, want in zip(grad(ours)(source, target, a), grad(direct)(source, target, a),
                       strict=True):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("run_mode,recon_head,heads", [
    ("BOTH", "gru", {"forecast", "recon"}),
    ("BOTH", "vae", {"forecast", "recon"}),
    ("FORECASTING", "gru", {"forecast"}),
    ("RECONSTRUCTING", "gru", {"recon"}),
])
def test_run_modes_build_their_heads_and_losses(run_mode, recon_head, heads):
  model, params = _build(run_mode=run_mode, recon_head=recon_head)
  out = model.apply({"params": params}, _windows()[:, :-1])
  assert set(out) == heads
  assert ("forecasting_model" in params) == ("forecast" in heads)
  assert ("recon_model" in params) == ("recon" in heads)
  if "forecast" in out:
    assert out["forecast"].shape == (BATCH, FEATURES)
  loss, parts = mtad_gat.loss(model, params, _windows(), rng=jax.random.PRNGKey(0), train=True)
  assert bool(jnp.isfinite(loss))
  np.testing.assert_allclose(loss, sum(parts.values()), rtol=1e-6)


def test_forecast_reads_only_the_lookback_and_scores_the_last_point():
  model, params = _build(run_mode="FORECASTING")
  windows = _windows()
  changed = windows.at[:, -1, 2].add(3.0)
  before = mtad_gat.score_parts(model, params, windows, rng=None)
  after = mtad_gat.score_parts(model, params, changed, rng=None)
  assert before.shape == (BATCH, 1, 2, FEATURES)
  np.testing.assert_array_equal(before[..., 1, :], 0.0)  # no reconstruction part
  forecast = model.apply({"params": params}, windows[:, :-1])["forecast"]
  np.testing.assert_allclose(after[:, 0, 0, 2], jnp.square(forecast[:, 2] - changed[:, -1, 2]),
                             rtol=1e-5)
  np.testing.assert_allclose(after[:, 0, 0, :2], before[:, 0, 0, :2], rtol=1e-6)


def test_target_dims_score_only_those_features():
  model, params = _build(target_dims="0,3")
  assert params["forecasting_model"]["layers_2"]["kernel"].shape[-1] == 2
  parts = mtad_gat.score_parts(model, params, _windows(), rng=None)
  assert bool(jnp.all(parts[..., [1, 2, 4]] == 0.0))
  assert bool(jnp.all(parts[..., [0, 3]] > 0.0))


def test_combined_score_equals_a_hand_computation():
  # Two timesteps, one feature: forecast parts 1 and 3, reconstruction parts 2 and 6.
  parts = np.array([[[1.0], [2.0]], [[3.0], [6.0]]])
  config = ml_collections.ConfigDict(dict(run_mode="BOTH", gamma=0.5, scale_scores=False))
  np.testing.assert_allclose(mtad_gat.combine(parts, reference=parts, model_config=config)[:, 0],
                             [(1 + 0.5 * 2) / 1.5, (3 + 0.5 * 6) / 1.5], rtol=1e-6)
  # Scaled by the reference's range per part: forecast [1, 5] -> 0.5, recon [2, 4] -> 2.
  config.scale_scores = True
  reference = np.array([[[1.0], [2.0]], [[5.0], [4.0]]])
  got = mtad_gat.combine(parts[1:], reference=reference, model_config=config)
  np.testing.assert_allclose(got[0, 0], (0.5 + 0.5 * 2.0) / 1.5, rtol=1e-6)
  config.run_mode = "FORECASTING"
  np.testing.assert_allclose(mtad_gat.combine(parts, reference=parts, model_config=config)[:, 0],
                             [0.0, 1.0])


def test_score_is_the_unscaled_combination_of_its_parts():
  model, params = _build(gamma=2.0)
  parts = mtad_gat.score_parts(model, params, _windows(), rng=None)
  np.testing.assert_allclose(mtad_gat.score(model, params, _windows(), rng=None)[:, 0],
                             (parts[:, 0, 0] + 2.0 * parts[:, 0, 1]) / 3.0, rtol=1e-6)


def test_training_steps_lower_the_loss():
  model, params = _build()
  series = np.sin(np.arange(400)[:, None] * 0.3 + np.arange(FEATURES)) * 0.5 + 0.5
  windows = jnp.asarray(np.stack([series[s:s + WINDOW] for s in range(0, 300, 10)]), jnp.float32)
  tx = optax.adam(3e-3)
  loss_fn = lambda p: mtad_gat.loss(model, p, windows, rng=jax.random.PRNGKey(0), train=True)[0]

  @jax.jit
  def step(params, opt_state):
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state)
    return optax.apply_updates(params, updates), opt_state, loss

  opt_state, losses = tx.init(params), []
  for _ in range(30):
    params, opt_state, loss = step(params, opt_state)
    losses.append(float(loss))
  assert np.isfinite(losses).all() and losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("field,value,message", [
    ("run_mode", "BOTHH", "run_mode"),
    ("recon_head", "lstm", "recon_head"),
    ("target_dims", "0,9", "target_dims"),
    ("target_dims", "x", "target_dims"),
    ("gru_hid_dim", 0, "gru_hid_dim"),
    ("dropout", 1.0, "dropout"),
    ("gamma", -1.0, "gamma"),
])
def test_bad_config_values_raise(field, value, message):
  with pytest.raises(ValueError, match=f"config.model.{message}"):
    mtad_gat.build(_model_config(**{field: value}), num_features=FEATURES, window=WINDOW)


def test_spacecraft_configs_forecast_the_telemetry_channel_only():
  assert smap_mtadgat.get_config().model.target_dims == "0"
  assert smd_mtadgat.get_config().model.target_dims == ""


def short_smd_config(data_root):
  """A small MTAD-GAT on SMD machine-1-6, one epoch over every 100th window: under a minute.
  Also the accuracy guard's run (tests/test_accuracy_guards.py)."""
  config = smd_mtadgat.get_config("machine-1-6")
  config.data.root = str(data_root / "ServerMachineDataset")
  config.data.window = 21
  config.data.train_stride = 100
  config.train.max_epochs = 1
  config.train.progress_bar = False
  config.model.update(dict(gru_hid_dim=16, fc_hid_dim=16, recon_hid_dim=16, fc_n_layers=1,
                           scale_scores=True))
  config.eval.plots = False
  config.eval.batch_size = 2048
  return config


def test_short_real_smd_run(tmp_path, data_root):
  config = short_smd_config(data_root)
  # scores.npz then holds the model's own per-feature scores, unsmoothed and unscaled
  config.eval.update(smoothing="none", feature_scaling="none", aggregation="sum")
  run_dir = experiment.train_and_evaluate(config, tmp_path)
  summary = summaries.load_summary(run_dir)
  assert summary["model"] == "mtad_gat" and summary["training"]["nonfinite_steps"] == 0
  assert 0.0 < summary["threshold_free"]["mean"]["VUS-PR"] <= 1.0
  assert 0.0 <= summary["interpretation"]["mean"]["HitRate@100%"] <= 1.0
  scores = np.load(run_dir / "scores.npz")["machine-1-6/per_feature"]
  assert scores.shape == (23689, 38) and np.isfinite(scores).all()
  # scale_scores: each part of each feature is scaled by its training range, so the
  # per-feature test scores sit around [0, 1] (they may leave it where the test does).
  assert 0.0 <= np.median(scores) <= 1.0


def test_detector_combines_the_parts_into_one_score_per_row(tmp_path):
  config = smd_mtadgat.get_config()
  config.data.window, config.train.max_epochs, config.train.progress_bar = 13, 1, False
  config.threshold.methods = "percentile"  # an 80-point held-out tail is too short for POT
  config.model.update(_model_config().to_dict())
  rng = np.random.default_rng(0)
  train = np.sin(np.arange(800)[:, None] / 4.0 + np.arange(FEATURES)) + 0.05 * rng.normal(
      size=(800, FEATURES))
  detector = Detector(config, workdir=str(tmp_path)).fit(train)
  test = train[:120].copy()
  test[80:84, 2] += 4.0
  scores = detector.decision_function(test)
  assert detector.decision_scores_.shape == (800,) and scores.shape == (120,)
  assert 80 <= np.argmax(scores) < 90
