"""MSCRED's pieces against their definitions, its learning, config checks, and a real SMD run.

The models here have small filters so they compile and run in seconds; the
default config takes a training step in tests/test_configs.py.
"""

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pandas as pd
import pytest

from configs import common
from configs import smd_mscred
from tsad_jax import data
from tsad_jax import deployment
from tsad_jax import detection
from tsad_jax import experiment
from tsad_jax import plots
from tsad_jax import summaries
from tsad_jax.data import csv_files
from tsad_jax.data.types import Segment
from tsad_jax.models import mscred

SMALL = {"scales": "2,4", "gap": 3, "steps": 3, "filters": "4,8,8,16"}
WINDOW = 10  # 4 + 3 * (3 - 1)


def small_config(**overrides) -> ml_collections.ConfigDict:
  model = common.get_config("mscred").model
  model.update({**SMALL, **overrides})
  return model


def _windows(batch: int, features: int, seed: int = 0) -> jax.Array:
  rng = np.random.default_rng(seed)
  return jnp.asarray(rng.uniform(size=(batch, WINDOW, features)), jnp.float32)


@functools.cache
def _model_and_params(features: int):
  """A small model and LeCun-normal parameters drawn in NumPy.

  Compiling the model's own `init` takes longer than every test here; it runs in
  tests/test_configs.py and in the real-data run below.
  """
  model = mscred.build(small_config(), num_features=features, window=WINDOW)
  shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), _windows(1, features))["params"]
  rng = np.random.default_rng(0)

  def draw(shape):
    if len(shape.shape) == 1:  # a bias
      return jnp.zeros(shape.shape, jnp.float32)
    fan_in = np.prod(shape.shape[:-1])
    return jnp.asarray(rng.normal(size=shape.shape) / np.sqrt(fan_in), jnp.float32)

  return model, jax.tree.map(draw, shapes)


def test_signature_matrices_are_the_definition():
  x = np.random.default_rng(0).normal(size=(2, 13, 4))
  scales, gap, steps = (2, 5), 3, 3  # needs 5 + 3 * 2 = 11 <= 13 points
  got = mscred.signature_matrices(jnp.asarray(x, jnp.float32), scales=scales, gap=gap,
                                  steps=steps)
  assert got.shape == (2, steps, 4, 4, 2)
  for b in range(2):
    for k in range(steps):
      t = 12 - gap * (steps - 1 - k)  # the last step ends at the window's last point
      for s, w in enumerate(scales):
        want = np.zeros((4, 4))
        for i in range(4):
          for j in range(4):
            want[i, j] = sum(x[b, t - d, i] * x[b, t - d, j] for d in range(w)) / w
        np.testing.assert_allclose(got[b, k, :, :, s], want, rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match="shorter"):
    mscred.signature_matrices(jnp.zeros((1, 10, 4)), scales=scales, gap=gap, steps=steps)


@pytest.mark.parametrize("features,sizes", [(38, (38, 19, 10, 5)), (5, (5, 3, 2, 1))])
def test_encoder_conv_lstm_and_decoder_shapes(features, sizes):
  model, params = _model_and_params(features)
  windows = _windows(2, features)
  out, state = jax.jit(functools.partial(model.apply, mutable=["intermediates"]))(
      {"params": params}, windows)
  assert out["reconstruction"].shape == out["target"].shape == (2, features, features, 2)
  assert bool(jnp.all(jnp.isfinite(out["reconstruction"])))
  matrices = mscred.signature_matrices(windows, scales=(2, 4), gap=3, steps=3)
  maps = jax.jit(mscred.ConvEncoder((4, 8, 8, 16)).apply)(
      {"params": params["encoder"]}, matrices.reshape((6, features, features, 2)))
  levels = list(zip(sizes, (4, 8, 8, 16), strict=True))
  assert [m.shape for m in maps] == [(6, size, size, channels) for size, channels in levels]
  for level, (size, channels) in enumerate(levels):
    attended = jax.jit(mscred.AttentionConvLSTM(channels).apply)(
        {"params": params[f"conv_lstm_{level + 1}"]},
        maps[level].reshape((2, 3, size, size, channels)))
    assert attended.shape == (2, size, size, channels)
    weights = state["intermediates"][f"conv_lstm_{level + 1}"]["attention"][0]
    assert weights.shape == (2, 3)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-5)


def test_temporal_attention_is_per_sample_softmax_of_inner_products():
  hidden = np.random.default_rng(1).normal(size=(3, 4, 2, 2, 3)).astype(np.float32) * 0.3
  attended, weights = mscred.temporal_attention(jnp.asarray(hidden))
  for b in range(3):
    logits = np.array([np.sum(hidden[b, k] * hidden[b, -1]) / 4 for k in range(4)])
    want = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    np.testing.assert_allclose(weights[b], want, rtol=1e-5)
    np.testing.assert_allclose(attended[b], np.tensordot(want, hidden[b], axes=1), rtol=1e-5,
                               atol=1e-6)
  # Another sample in the batch does not change a sample's weights.
  _, alone = mscred.temporal_attention(jnp.asarray(hidden[:1]))
  np.testing.assert_allclose(alone, weights[:1], rtol=1e-6)


def test_loss_decreases_under_adam():
  model, params = _model_and_params(5)
  t = np.arange(40)[:, None]
  series = 0.5 + 0.4 * np.sin(2 * np.pi * t / 12 + np.arange(5))
  windows = jnp.asarray(np.stack([series[s:s + WINDOW] for s in range(0, 30, 2)]), jnp.float32)
  tx = optax.adam(3e-3)

  @jax.jit
  def step(params, opt_state):
    (value, metrics), grads = jax.value_and_grad(
        lambda p: mscred.loss(model, p, windows, rng=None, train=True), has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, value, metrics

  opt_state = tx.init(params)
  losses = []
  for _ in range(40):
    params, opt_state, value, metrics = step(params, opt_state)
    assert float(metrics["mse"]) == float(value) and np.isfinite(float(value))
    losses.append(float(value))
  assert np.mean(losses[-5:]) < 0.3 * np.mean(losses[:3])


def test_scores_residual_and_count_modes_by_hand():
  model, params = _model_and_params(5)
  windows = _windows(3, 5, seed=2)

  @jax.jit
  def outputs(params, windows):
    return (model.apply({"params": params}, windows),
            mscred.score(model, params, windows, rng=None),
            mscred.residual_matrices(model, params, windows, rng=None),
            mscred.loss(model, params, windows, rng=None, train=False)[0])

  out, scores, matrices, value = outputs(params, windows)
  residual = np.square(np.asarray(out["target"]) - np.asarray(out["reconstruction"]))
  assert not mscred.SCORES_EVERY_POINT and scores.shape == (3, 1, 5)
  np.testing.assert_allclose(scores[:, 0], residual.sum(axis=(2, 3)), rtol=1e-5)
  np.testing.assert_allclose(matrices, residual.sum(axis=-1), rtol=1e-5)
  np.testing.assert_allclose(value, residual.mean(), rtol=1e-5)

  threshold = float(np.median(residual))
  counting = mscred.build(small_config(score_mode="count", residual_threshold=threshold),
                          num_features=5, window=WINDOW)
  counts = np.asarray(jax.jit(lambda p, w: mscred.score(counting, p, w, rng=None))(
      params, windows))[:, 0]
  for b in range(3):
    for i in range(5):
      broken = sum(residual[b, i, j, s] > threshold for j in range(5) for s in range(2))
      assert counts[b, i] == broken
  assert counts.sum() == (residual > threshold).sum()

  larger_scale = mscred.build(small_config(score_scales="4"), num_features=5, window=WINDOW)
  one_scale = jax.jit(lambda p, w: mscred.score(larger_scale, p, w, rng=None))(params, windows)
  np.testing.assert_allclose(one_scale[:, 0], residual[..., 1].sum(axis=2), rtol=1e-5)


def test_build_refuses_a_window_that_does_not_fit():
  with pytest.raises(ValueError, match=r"config\.data\.window=12.*= 10.*--config\.data\.window=10"):
    mscred.build(small_config(), num_features=3, window=12)
  config = common.get_config("mscred").model
  with pytest.raises(ValueError, match=r"config\.data\.window=8.*= 100"):
    mscred.build(config, num_features=3, window=8)


@pytest.mark.parametrize("field,value", [
    ("scales", "10,x"), ("scales", "0,10"), ("scales", "10,10"), ("scales", ""),
    ("filters", "32,64,128"), ("filters", "32,64,-1,256"), ("gap", 0), ("steps", 0),
    ("score_stride", 0), ("score_mode", "max"), ("residual_threshold", -0.1),
    ("residual_threshold", float("nan")), ("score_scales", "3"), ("score_scales", "2,2"),
    ("score_scales", "2,x"),
])
def test_bad_config_values_raise(field, value):
  with pytest.raises(ValueError, match=rf"config\.model\.{field}="):
    mscred.build(small_config(**{field: value}), num_features=3, window=WINDOW)


def test_score_stride_comes_from_the_config():
  assert mscred.score_stride(common.get_config("mscred").model) == 10
  assert mscred.score_stride(small_config(score_stride=3)) == 3
  with pytest.raises(ValueError, match=r"config\.model\.score_stride"):
    mscred.score_stride(small_config(score_stride=-2))


def test_top_detected_segments_and_residual_heatmap(tmp_path):
  score = np.array([0, 5, 6, 0, 0, 9, 1, 0, 7, 7, 7, 0], float)
  detected = plots.top_detected_segments(score, 4.0, limit=2)
  assert detected == [(Segment(5, 5), 5), (Segment(8, 10), 8)]
  assert len(plots.top_detected_segments(score, 4.0)) == 3
  assert plots.top_detected_segments(score, 100.0) == []
  path = tmp_path / "residual.png"
  plots.residual_heatmap(np.eye(3), ["a", "b", "c"], name="m", segment=Segment(8, 10), peak=8,
                         path=path)
  assert path.stat().st_size > 0


def test_short_real_smd_run(tmp_path, data_root):
  config = smd_mscred.get_config("machine-1-6")
  config.data.root = str(data_root / "ServerMachineDataset")
  config.data.window = 20
  config.model.update({"scales": "5,10", "gap": 5, "steps": 3, "filters": "4,4,4,4",
                       "score_stride": 20})
  config.data.train_stride = 400
  config.train.max_epochs = 1
  config.train.progress_bar = False
  config.eval.batch_size = 256
  config.eval.baselines = "zscore"
  config.eval.residual_plots = 3
  config.eval.smoothing = "none"  # the held scores below are the model's own
  run_dir = experiment.train_and_evaluate(config, tmp_path)
  summary = summaries.load_summary(run_dir)
  assert summary["model"] == "mscred" and summary["entities"] == ["machine-1-6"]
  assert 0.0 < summary["threshold_free"]["mean"]["VUS-PR"] <= 1.0
  assert summary["training"]["nonfinite_steps"] == 0
  assert "HitRate@150%" in summary["interpretation"]["mean"]
  scores = np.load(run_dir / "scores.npz")["machine-1-6/per_feature"]
  assert scores.shape == (23689, 38) and np.isfinite(scores).all()
  # Held between scored points: a new value at most every `score_stride` steps (+ the last).
  changes = np.flatnonzero(np.any(np.diff(scores[19:], axis=0) != 0, axis=1))
  assert len(changes) <= (23689 - 19) // 20 + 1
  assert (run_dir / "plots" / "score_machine-1-6.png").exists()
  threshold = summary["thresholds"]["pot"]["mean"]["threshold"]
  detected = plots.top_detected_segments(scores.sum(axis=1), threshold, limit=3)
  heatmaps = sorted((run_dir / "plots").glob("residual_machine-1-6_*.png"))
  assert len(heatmaps) == len(detected) == 3
  # launch.detect on new rows draws each alarm event's residual heatmap at its peak.
  dataset = data.load(config.data)
  rows = tmp_path / "rows.csv"
  csv_files.write_series(rows, dataset.entities[0].test[:4000], dataset.feature_names,
                         start="2026-01-01", points_per_day=1440)
  out = tmp_path / "detected"
  detection.run(deployment.load(run_dir), str(rows), out, detection.Options(progress=False))
  events = pd.read_csv(out / "alarms.csv")
  drawn = events["heatmap"].dropna()
  assert len(events) > 0 and len(drawn) > 0
  assert all((out / name).stat().st_size > 0 for name in drawn)
