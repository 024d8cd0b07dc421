"""OmniAnomaly's pieces against their definitions, and its behaviour on a small series."""


import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from configs import common
from configs import msl_omni
from tsad_jax import config_names
from tsad_jax import experiment
from tsad_jax import run_setup
from tsad_jax import summaries
from tsad_jax.data import DATA_ROOT_ENV
from tsad_jax.data import DataError
from tsad_jax.models import omni_anomaly


def small_config(**overrides) -> ml_collections.ConfigDict:
  model = common.get_config("omni_anomaly").model
  model.update({"rnn_hidden": 16, "dense_dim": 16, "nf_layers": 4, **overrides})
  return model


def test_state_space_prior_is_the_gaussian_it_defines():
  # s_1 ~ N(0, 1), s_t = s_{t-1} + N(0, 1), z_t = s_t + N(0, 1): per dimension z is
  # Gaussian with Cov(z_i, z_j) = min(i, j) + [i == j] (1-based).
  window = 7
  z = np.random.default_rng(0).normal(size=(2, window, 3)) * 2.0
  steps = np.arange(1, window + 1)
  cov = np.minimum.outer(steps, steps) + np.eye(window)
  inv, (_, logdet) = np.linalg.inv(cov), np.linalg.slogdet(cov)
  expected = np.zeros(2)
  for b in range(2):
    for d in range(3):
      x = z[b, :, d]
      expected[b] += -0.5 * (x @ inv @ x + logdet + window * np.log(2 * np.pi))
  got = omni_anomaly.local_level_log_prob(jnp.asarray(z, jnp.float32)).sum(1)
  np.testing.assert_allclose(got, expected, rtol=1e-4)


def test_planar_flow_log_det_is_the_jacobian_and_flow_is_invertible():
  flow = omni_anomaly.PlanarFlow()
  z = jnp.asarray(np.random.default_rng(1).normal(size=(5, 3)), jnp.float32)
  params = {"params": {"u": jnp.array([2.0, -1.0, 0.5]), "w": jnp.array([-1.5, 0.3, 1.0]),
                       "b": jnp.array(0.2)}}
  _, log_det = flow.apply(params, z)
  for i in range(5):
    jacobian = jax.jacfwd(lambda v: flow.apply(params, v[None])[0][0])(z[i])
    np.testing.assert_allclose(log_det[i], jnp.log(jnp.abs(jnp.linalg.det(jacobian))),
                               rtol=1e-4, atol=1e-5)
  # u is pushed so that w.u_hat >= -1: f is monotone along w, so 1 + u_hat.psi > 0.
  grid = jnp.linspace(-20, 20, 401)[:, None] * params["params"]["w"]
  _, log_dets = flow.apply(params, grid)
  assert bool(jnp.all(jnp.isfinite(log_dets)))


def test_outputs_score_shape_and_bad_config():
  model = omni_anomaly.build(small_config(), num_features=4, window=10)
  windows = jnp.ones((3, 10, 4)) * 0.5
  params = model.init({"params": jax.random.PRNGKey(0), "sample": jax.random.PRNGKey(1)},
                      windows)["params"]
  out = model.apply({"params": params}, windows, rngs={"sample": jax.random.PRNGKey(2)})
  assert out["x_mean"].shape == out["x_std"].shape == (3, 10, 4)
  assert out["log_q_z"].shape == out["log_p_z"].shape == (3, 10)
  assert bool(jnp.all(out["x_std"] > 0))
  scores = omni_anomaly.score(model, params, windows, rng=jax.random.PRNGKey(3))
  assert scores.shape == (3, 1, 4) and bool(jnp.all(jnp.isfinite(scores)))
  again = omni_anomaly.score(model, params, windows, rng=jax.random.PRNGKey(3))
  np.testing.assert_array_equal(scores, again)
  for field, value in (("z_dim", 0), ("nf_layers", -1), ("beta_kl", -1.0), ("test_n_z", 0)):
    with pytest.raises(ValueError, match=f"config.model.{field}"):
      omni_anomaly.build(small_config(**{field: value}), num_features=4, window=10)


def test_unconnected_variants_drop_the_connections():
  windows = jnp.asarray(np.random.default_rng(2).uniform(size=(2, 6, 3)), jnp.float32)
  rngs = {"params": jax.random.PRNGKey(0), "sample": jax.random.PRNGKey(1)}
  plain = omni_anomaly.build(small_config(connected_z_q=False, connected_z_p=False),
                             num_features=3, window=6)
  params = plain.init(rngs, windows)["params"]
  out = plain.apply({"params": params}, windows, rngs={"sample": jax.random.PRNGKey(2)})
  assert params["flows"]["stack"]["flow"]["u"].shape == (4, 3)  # 4 flows, stacked
  connected = omni_anomaly.build(small_config(), num_features=3, window=6)
  out_connected = connected.apply({"params": params}, windows,
                                   rngs={"sample": jax.random.PRNGKey(2)})
  assert not np.allclose(out["log_p_z"], out_connected["log_p_z"])
  assert not np.allclose(out["log_q_z"], out_connected["log_q_z"])


def test_trains_on_a_periodic_series_and_scores_a_spike_higher():
  rng = np.random.default_rng(0)
  t = np.arange(1200)[:, None]
  series = 0.5 + 0.3 * np.sin(2 * np.pi * t / 24 * np.array([1.0, 0.5, 2.0]))
  series = (series + 0.01 * rng.normal(size=series.shape)).astype(np.float32)
  model = omni_anomaly.build(small_config(), num_features=3, window=24)
  params = model.init({"params": jax.random.PRNGKey(0), "sample": jax.random.PRNGKey(1)},
                      jnp.asarray(series[None, :24]))["params"]
  tx = optax.adam(3e-3)
  opt_state = tx.init(params)

  @jax.jit
  def step(params, opt_state, windows, key):
    (value, _), grads = jax.value_and_grad(
        lambda p: omni_anomaly.loss(model, p, windows, rng=key, train=True), has_aux=True)(params)
    updates, opt_state = tx.update(optax.clip_by_global_norm(10.0).update(grads, None)[0],
                                   opt_state)
    return optax.apply_updates(params, updates), opt_state, value

  starts = np.arange(0, 1000 - 24)
  losses = []
  for i in range(150):
    batch = rng.choice(starts, 32)
    windows = jnp.asarray(np.stack([series[s:s + 24] for s in batch]))
    params, opt_state, value = step(params, opt_state, windows, jax.random.PRNGKey(i))
    losses.append(float(value))
  assert np.mean(losses[-10:]) < np.mean(losses[:10]) - 50
  normal = jnp.asarray(np.stack([series[s:s + 24] for s in range(1000, 1100, 10)]))
  spiked = normal.at[:, -1, 1].add(0.6)
  key = jax.random.PRNGKey(7)
  normal_scores = omni_anomaly.score(model, params, normal, rng=key)
  spiked_scores = omni_anomaly.score(model, params, spiked, rng=key)
  # One posterior sample per score, so single windows are noisy; most must rise.
  assert float(jnp.mean(spiked_scores[:, 0, 1] > normal_scores[:, 0, 1])) >= 0.8
  # The spike is in feature 1: the other features' scores barely move.
  assert float(jnp.mean(spiked_scores[:, 0, 1] - normal_scores[:, 0, 1])) > 10 * float(
      jnp.mean(jnp.abs(spiked_scores[:, 0, ::2] - normal_scores[:, 0, ::2])))


@pytest.mark.parametrize("name", ["smd_omni", "smap_omni", "msl_omni"])
def test_missing_data_root_says_how_to_point_at_the_data(name, monkeypatch):
  monkeypatch.delenv(DATA_ROOT_ENV, raising=False)
  config = config_names.load(name)
  with pytest.raises(DataError, match="--config.data.root=") as error:
    run_setup.build(config)
  assert DATA_ROOT_ENV in str(error.value)


def test_short_real_msl_channel_run(tmp_path, data_root):
  config = msl_omni.get_config("M-1")
  config.data.root = str(data_root / "SMAP_MSL")
  config.data.train_stride = 50
  config.train.max_epochs = 1
  config.train.progress_bar = False
  config.model.update({"rnn_hidden": 8, "dense_dim": 8, "nf_layers": 2})
  config.eval.plots = False
  config.threshold.methods = "pot"  # one channel's tail is too short for DSPOT's depth 100
  run_dir = experiment.train_and_evaluate(config, tmp_path)
  summary = summaries.load_summary(run_dir)
  assert summary["model"] == "omni_anomaly" and summary["entities"] == ["M-1"]
  assert 0.0 < summary["threshold_free"]["mean"]["VUS-PR"] <= 1.0
  assert summary["training"]["nonfinite_steps"] == 0
  scores = np.load(run_dir / "scores.npz")["M-1/per_feature"]
  assert scores.shape[1] == 55 and np.isfinite(scores).all()
