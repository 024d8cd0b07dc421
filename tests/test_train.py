"""The shared training loop: resume, non-finite steps, early stopping, checkpoints."""

import json

import jax
import jax.numpy as jnp
import numpy as np
from numpy.testing import assert_array_equal
import pytest

from configs import tiny
from tests import fakes
from tsad_jax import experiment
from tsad_jax import fleet
from tsad_jax import models
from tsad_jax import optim as optim_lib
from tsad_jax import run_setup
from tsad_jax import train
from tsad_jax.data.prepare import Prepared
from tsad_jax.data.prepare import fit_and_val_starts
from tsad_jax.data.types import Dataset
from tsad_jax.data.types import Entity


def _prepared(config, length=400, num_features=3, seed=0):
  rng = np.random.default_rng(seed)
  t = np.arange(length)[:, None]
  noise = 0.1 * rng.normal(size=(length, num_features))
  series = np.sin(t / 7.0 + np.arange(num_features)) + noise
  series = series.astype(np.float32)
  entity = Entity("toy", series, series[:0], np.zeros(0, np.uint8))
  train_starts, val_starts = fit_and_val_starts([(length,)], config.data)
  return Prepared(Dataset("toy", (entity,), ("a", "b", "c")[:num_features]), series, series[:0],
                  (length,), (), train_starts, val_starts)


def _setup(**overrides):
  config = tiny.get_config()
  config.train.max_epochs = 3
  config.train.patience = 0
  for key, value in overrides.items():
    section, field = key.split("__")
    config[section][field] = value
  prepared = _prepared(config)
  lib = models.get(config.model.name)
  model = lib.build(config.model, num_features=prepared.num_features, window=config.data.window)
  return config, prepared, lib, model


def _leaves_equal(a, b):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    assert_array_equal(np.asarray(x), np.asarray(y))


def test_resumed_run_is_bit_identical_to_an_uninterrupted_one(tmp_path):
  config, prepared, lib, model = _setup(model__dropout=0.2)  # dropout: the rng must line up too
  full = train.fit(config, prepared, tmp_path / "full", model_lib=lib, model=model)
  steps = full.steps
  assert steps > 10
  k = steps // 2 + 1  # mid-epoch, and not on a checkpoint_every boundary
  cut = train.fit(config, prepared, tmp_path / "cut", model_lib=lib, model=model,
                  stop_after_steps=k)
  assert not cut.finished and cut.steps == k
  resumed = train.fit(config, prepared, tmp_path / "cut", model_lib=lib, model=model)
  assert resumed.finished and resumed.steps == steps
  _leaves_equal(full.params, resumed.params)
  # Every figure of every epoch, the resumed one's train_loss included; timings aside.
  untimed = lambda run: [{k: v for k, v in h.items() if k != "seconds"}
                         for h in json.loads((tmp_path / run / "metrics.json").read_text())]
  assert untimed("cut") == untimed("full")
  assert len(untimed("full")) == len(full.history)


def test_a_torn_latest_checkpoint_is_reported_set_aside_and_the_one_before_resumed(tmp_path):
  config, prepared, lib, model = _setup(model__dropout=0.2, train__checkpoint_every=4)
  full = train.fit(config, prepared, tmp_path / "full", model_lib=lib, model=model)
  k = full.steps // 2 + 1
  train.fit(config, prepared, tmp_path / "cut", model_lib=lib, model=model, stop_after_steps=k)
  torn = tmp_path / "cut" / "checkpoints" / str(k)
  data = [f for f in torn.rglob("*") if f.is_file() and f.parent.name == "d"]
  assert data
  for f in data:  # as a disk or a copy cut short would leave them
    f.write_bytes(f.read_bytes()[:f.stat().st_size // 2])
  with pytest.warns(UserWarning, match=f"Checkpoint {k} .* is unreadable"):
    resumed = train.fit(config, prepared, tmp_path / "cut", model_lib=lib, model=model)
  _leaves_equal(full.params, resumed.params)
  assert (tmp_path / "cut" / "checkpoints_unreadable" / str(k)).is_dir()  # kept, not deleted


def test_a_fleet_of_one_is_bit_identical_to_a_plain_run(tmp_path):
  setup = run_setup.build(tiny.get_config())
  plain = train.fit(setup.config, setup.prepared, tmp_path / "plain", model_lib=setup.model_lib,
                    model=setup.model)
  (member,) = fleet.fit(setup.config, [setup], [tmp_path / "member"])
  _leaves_equal(plain.params, member.params)
  _leaves_equal(train.load_params(tmp_path / "plain"), train.load_params(tmp_path / "member"))
  assert plain.history[-1]["val_loss"] == member.history[-1]["val_loss"]


def test_finished_run_restored_parameters_match(tmp_path):
  config, prepared, lib, model = _setup()
  result = train.fit(config, prepared, tmp_path, model_lib=lib, model=model)
  _leaves_equal(train.load_params(tmp_path), result.params)
  assert set(map(int, train.checkpoints.manager(tmp_path).all_steps())) >= {result.steps}


def test_nonfinite_steps_are_skipped_and_counted(tmp_path):
  config, prepared, lib, model = _setup()

  def flaky_loss(model, params, windows, *, rng, train):
    value, aux = lib.loss(model, params, windows, rng=rng, train=train)
    poisoned = train & (jax.random.uniform(jax.random.fold_in(rng, 7)) < 0.3)
    return value * jnp.where(poisoned, jnp.nan, 1.0), aux  # NaN gradients too

  flaky = fakes.model_file(loss=flaky_loss, score=lib.score, SCORES_EVERY_POINT=True)
  result = train.fit(config, prepared, tmp_path, model_lib=flaky, model=model)
  _, loop_key = jax.random.split(jax.random.PRNGKey(config.seed))
  expected = sum(
      bool(jax.random.uniform(jax.random.fold_in(jax.random.fold_in(loop_key, s), 7)) < 0.3)
      for s in range(result.steps))
  assert expected > 0
  assert result.nonfinite_steps == expected
  assert result.history[-1]["nonfinite_steps"] == expected
  assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(result.params))


def test_a_nonfinite_step_leaves_parameters_and_optimizer_state_bit_identical():
  config, prepared, lib, model = _setup(optim__grad_clip_norm=1.0, optim__l2=1e-3,
                                        optim__schedule="cosine")

  def nan_when_asked(model, params, windows, *, rng, train):
    value, aux = lib.loss(model, params, windows, rng=rng, train=train)
    return value * jnp.where(windows[0, 0, 0] > 100.0, jnp.nan, 1.0), aux

  broken = fakes.model_file(loss=nan_when_asked, score=lib.score, SCORES_EVERY_POINT=True)
  state, tx = train.create_train_state(config, model, init_key=jax.random.PRNGKey(0),
                                       num_features=prepared.num_features, steps_per_epoch=4)
  step = train.make_train_step(broken, model, tx, window=config.data.window)
  series, key = jnp.asarray(prepared.train), jax.random.PRNGKey(1)
  starts = jnp.asarray(prepared.train_starts[:config.train.batch_size])
  state, _ = step(state, series, starts, key)  # one finite step first: moments are non-zero
  before = jax.tree.map(np.array, state)
  poisoned = series.at[starts[0]].set(1000.0)
  after, loss = step(state, poisoned, starts, key)
  assert not np.isfinite(float(loss))
  _leaves_equal(before.params, after.params)
  counters = ("total_notfinite", "notfinite_count", "last_finite")
  kept = lambda tree: [leaf for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]
                       if not any(name in jax.tree_util.keystr(path) for name in counters)]
  _leaves_equal(kept(before.opt_state), kept(after.opt_state))
  assert optim_lib.nonfinite_steps(after.opt_state) == 1
  assert optim_lib.nonfinite_steps(before.opt_state) == 0


def test_early_stopping_keeps_the_best_validation_parameters(tmp_path):
  config, prepared, lib, model = _setup(train__patience=1, train__max_epochs=30,
                                        optim__learning_rate=0.05)
  result = train.fit(config, prepared, tmp_path, model_lib=lib, model=model)
  val = [h["val_loss"] for h in result.history]
  assert len(val) < 30, "a large learning rate should stop improving before 30 epochs"
  best_epoch = int(np.argmin(val))
  assert len(val) == best_epoch + 2  # patience 1: one epoch without improvement
  init_key, _ = jax.random.split(jax.random.PRNGKey(config.seed))
  losses = train._window_losses(result.params, jnp.asarray(prepared.train), prepared.val_starts,
                                jax.random.fold_in(init_key, 1), model=model, model_lib=lib,
                                window=config.data.window)
  assert float(np.mean(losses)) == pytest.approx(val[best_epoch], rel=1e-6)


def test_epoch_order_visits_every_window_and_depends_on_the_epoch():
  a = train.epoch_order(0, 0, 10, 4)
  assert a.shape == (3, 4)
  assert set(a.reshape(-1)) == set(range(10))
  assert not np.array_equal(a, train.epoch_order(0, 1, 10, 4))
  assert_array_equal(a, train.epoch_order(0, 0, 10, 4))


def test_a_diverged_run_stops_with_a_clear_error(tmp_path):
  config, prepared, lib, model = _setup(optim__max_consecutive_nonfinite=3)

  def nan_loss(model, params, windows, *, rng, train):
    value, aux = lib.loss(model, params, windows, rng=rng, train=train)
    return value * jnp.where(train, jnp.nan, 1.0), aux

  broken = fakes.model_file(loss=nan_loss, score=lib.score, SCORES_EVERY_POINT=True)
  with pytest.raises(FloatingPointError, match="learning_rate"):
    train.fit(config, prepared, tmp_path, model_lib=broken, model=model)


def test_params_of_another_layout_are_refused_naming_the_run():
  config = tiny.get_config()
  lib = models.get("lstm_ae")
  small = lib.build(config.model, num_features=3, window=16)
  config.model.hidden_size = 16
  wider = lib.build(config.model, num_features=3, window=16)
  params = train.init_params(small, key=jax.random.PRNGKey(0), window=16, num_features=3)
  train.check_params_fit(params, small, window=16, num_features=3, source="runs/a")
  with pytest.raises(ValueError, match=r"runs/b holds parameters") as error:
    train.check_params_fit(params, wider, window=16, num_features=3, source="runs/b")
  assert "['encoder_cell']['w_hh']: (8, 32) saved, (16, 64) needed" in str(error.value)
  renamed = {"old_name" if k == "output" else k: v for k, v in params.items()}
  with pytest.raises(ValueError, match=r"missing: \['output'\]\['bias'\]"):
    train.check_params_fit(renamed, small, window=16, num_features=3, source="runs/c")


@pytest.mark.parametrize("model", ["lstm_ae", "transformer"])
def test_bfloat16_compute_keeps_float32_parameters_and_tracks_the_float32_loss(tmp_path, model):
  histories = {}
  for dtype in ("float32", "bfloat16"):
    config = tiny.get_config()
    if model != "lstm_ae":
      config.model = models.defaults(model)
      config.model.update({"d_model": 16, "n_heads": 2, "num_layers": 1, "d_ff": 32})
    config.train.compute_dtype = dtype
    setup = run_setup.build(config)
    result = train.fit(config, setup.prepared, tmp_path / dtype, model_lib=setup.model_lib,
                       model=setup.model)
    assert {leaf.dtype for leaf in jax.tree.leaves(result.params)} == {np.dtype("float32")}
    histories[dtype] = [h["train_loss"] for h in result.history]
  np.testing.assert_allclose(histories["bfloat16"], histories["float32"], rtol=0.05)
  assert histories["bfloat16"] != histories["float32"]  # bfloat16 did compute


def test_an_unknown_compute_dtype_is_refused_before_training(tmp_path):
  config = tiny.get_config()
  config.train.compute_dtype = "float16"
  with pytest.raises(ValueError, match="compute_dtype.*float32, bfloat16"):
    experiment.train_and_evaluate(config, tmp_path)
  assert not any(tmp_path.iterdir())
