"""Every config in configs/ builds its model and takes a training step at tiny size."""

import pathlib

import jax
import jax.numpy as jnp
import pytest

from configs import common
from tsad_jax import config_names
from tsad_jax import models
from tsad_jax import runs
from tsad_jax import train

CONFIGS = sorted(p.stem for p in pathlib.Path(__file__).parent.parent.joinpath("configs").glob(
    "*.py") if p.stem not in ("__init__", "common"))


# Models whose fields fix the window get values that make it 8; the rest keep theirs.
WINDOW_8 = {"mscred": {"scales": "2,4", "gap": 2, "steps": 3},  # 4 + 2 * (3 - 1)
            "sd_mae": {"num_patches": 2, "patch_size": 4, "mask_last_n": 4}}  # 2 * 4


@pytest.mark.parametrize("name", CONFIGS)
def test_config_builds_and_steps(name):
  config = config_names.load(name)
  config.data.window = 8
  config.model.update(WINDOW_8.get(config.model.name, {}))
  lib = models.get(config.model.name)
  model = lib.build(config.model, num_features=3, window=8)
  state, tx = train.create_train_state(config, model, init_key=jax.random.PRNGKey(0),
                                       num_features=3, steps_per_epoch=2)
  step = train.make_train_step(lib, model, tx, window=8)
  series = jnp.linspace(0.0, 1.0, 60).reshape(20, 3)
  state, loss = step(state, series, jnp.array([0, 4, 12]), jax.random.PRNGKey(1))
  assert jnp.isfinite(loss) and int(state.step) == 1
  score = jax.jit(lambda params, windows: lib.score(model, params, windows,
                                                   rng=jax.random.PRNGKey(2)))
  scores = score(state.params, series[None, :8])
  assert scores.shape[0] == 1 and scores.shape[-1] == 3
  assert scores.shape[1] == (8 if lib.SCORES_EVERY_POINT else 1)


def test_every_model_file_has_a_config():
  used = {config_names.load(n).model.name for n in CONFIGS}
  assert set(models.available()) <= used


def test_configs_load_by_name_with_an_argument_and_from_subfolders():
  assert config_names.load("smd_omni:machine-2-1").data.entity == "machine-2-1"
  assert config_names.load("sweeps.demo_quick").base == "demo"
  with pytest.raises(ValueError, match=r"configs/sweeps/nope.py; choose from .*demo_quick"):
    config_names.load("sweeps.nope")


def test_comma_lists_drop_blanks_and_spaces():
  assert config_names.comma_list(" pot, tail_p ,,") == ["pot", "tail_p"]
  assert config_names.comma_list("") == []


@pytest.mark.parametrize("name", models.available())
def test_a_model_file_names_its_title_hooks_and_scoring_fields_of_its_config(name):
  lib = models.get(name)
  assert isinstance(lib.TITLE, str) and lib.TITLE
  assert isinstance(lib.HOOKS, models.Hooks)
  model_fields = common.defaults(name).model
  assert set(lib.SCORING_FIELDS) <= set(model_fields)
  for field in lib.SCORING_FIELDS:
    assert runs.is_rescoring_field(f"model.{field}", name)
  assert not runs.is_rescoring_field("model.name", name)
  assert runs.is_rescoring_field("threshold.pot_q", name)
