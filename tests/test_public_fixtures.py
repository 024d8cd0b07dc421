"""Checkpoints written by the public PyTorch classes (tests/fixtures/public, made by its
make.py) load, compute what the public forward computed, and pass interop.parity."""

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="interop needs the [torch] extra (CI installs it)")

from interop import convert  # noqa: E402
from interop import pair as pair_lib  # noqa: E402
from interop import parity  # noqa: E402
from interop.torch_models import mscred as mscred_twin  # noqa: E402
from tests.test_interop_ml4its import our_config  # noqa: E402
from tsad_jax import config_names  # noqa: E402
from tsad_jax import models  # noqa: E402
from tsad_jax.models import mscred  # noqa: E402

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "public"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
ATOL = 1e-5  # float32 agreement of two implementations of the same function


def _arrays(name: str) -> dict[str, np.ndarray]:
  with np.load(FIXTURES / f"{name}.npz") as arrays:
    return dict(arrays)


def _mtad_gat_config():
  args = dict(MANIFEST["ml4its_mtad_gat"]["arguments"])
  sizes = {k: args.pop(k) for k in ("n_features", "window_size", "out_dim")}
  assert sizes["out_dim"] == sizes["n_features"]  # our model rebuilds every feature
  return our_config(args), sizes["n_features"], sizes["window_size"] + 1


def _lstm_ae_config(name: str):
  args = MANIFEST[name]["arguments"]
  config = config_names.load({"lstm_ae": "smd_lstmae", "lstm_ae_clf": "smd_lstmae_clf",
                              "lstm_ae_pred": "smd_lstmae_pred"}[name]).model
  config.update(hidden_size=args["hidden_size"], output_sigmoid=args["use_act"],
                dropout=args["dropout_ratio"])
  if name == "lstm_ae_pred":
    config.pred_steps = 1  # the public head forecasts one point (from every step; see the twin)
  window = args["seq_len"] + (config.pred_steps if name == "lstm_ae_pred" else 0)
  return config, args["input_size"], window


def _case(name: str):
  return _mtad_gat_config() if name == "ml4its_mtad_gat" else _lstm_ae_config(name)


def _flax_outputs(name: str, params, config, num_features: int, window: int, x):
  model = models.get(config.name).build(config, num_features=num_features, window=window)
  out = model.apply({"params": params}, jnp.asarray(x))
  if name == "ml4its_mtad_gat":
    return {"forecast": out["forecast"], "recon": out["recon"]}
  if name == "lstm_ae_clf":
    return {"recon": out[0], "logits": out[1]}
  return {"recon": out[0] if name == "lstm_ae_pred" else out}


CHECKPOINTS = ["ml4its_mtad_gat", "lstm_ae", "lstm_ae_clf", "lstm_ae_pred"]


@pytest.mark.parametrize("name", CHECKPOINTS)
def test_public_checkpoint_computes_what_the_public_forward_computed(name):
  config, num_features, window = _case(name)
  path = FIXTURES / f"{name}.pt"
  twin = pair_lib.make_pair(config, num_features=num_features, window=window).module
  public_layout = {k: tuple(v.shape) for k, v in torch.load(path, weights_only=True).items()}
  assert [(k, tuple(v.shape)) for k, v in twin.state_dict().items()] == list(
      public_layout.items())

  params = convert.params_from_checkpoint(path, config, num_features=num_features,
                                          window=window)
  arrays = _arrays(name)
  outputs = _flax_outputs(name, params, config, num_features, window, arrays["x"])
  assert set(outputs) == set(arrays) - {"x"}
  for key, value in outputs.items():
    np.testing.assert_allclose(value, arrays[key], rtol=0, atol=ATOL, err_msg=key)
  back = convert.flax_to_torch(params, convert.model_entries(config, num_features=num_features,
                                                             window=window))
  for key, value in torch.load(path, weights_only=True).items():
    assert np.array_equal(back[key], value.numpy()), key


@pytest.mark.parametrize("name", CHECKPOINTS)
def test_public_checkpoint_passes_parity(name):
  config, num_features, window = _case(name)
  state_dict = convert.load_state_dict(FIXTURES / f"{name}.pt")
  pair = pair_lib.make_pair(config, num_features=num_features, window=window,
                          state_dict=state_dict)
  windows = np.random.default_rng(0).uniform(size=(4, window, num_features)).astype(np.float32)
  diffs = parity.compare(pair, windows) + parity.gradients_and_adam_step(pair, windows)
  assert all(d.ok for d in diffs), pair_lib.report(diffs)


def test_mscred_twin_has_the_public_layout():
  """The public MSCRED(in_channels_encoder=3, in_channels_decoder=256): its fixed widths."""
  public = {k: tuple(v) for k, v in json.loads((FIXTURES / "mscred_layout.json").read_text())
            .items()}
  config = config_names.load("smd_mscred").model
  config.update(scales="10,30,60", filters="32,64,128,256")
  window = mscred.required_window(mscred.parse_ints(config.scales), config.gap, config.steps)
  twin = mscred_twin.build(config, num_features=6, window=window)
  assert [(k, tuple(v.shape)) for k, v in twin.state_dict().items()] == list(public.items())

  shapes = convert.flax_shapes(config, num_features=6, window=window)
  entries = convert.model_entries(config, num_features=6, window=window)
  rng = np.random.default_rng(0)
  state_dict = {k: rng.normal(size=s).astype(np.float32) for k, s in public.items()}
  back = convert.flax_to_torch(convert.torch_to_flax(state_dict, entries, shapes), entries)
  assert all(np.array_equal(back[k], v) for k, v in state_dict.items())


def test_public_conv_lstm_cell_computes_what_our_cell_computes():
  state_dict = {f"cell.{k}": v for k, v in
                convert.load_state_dict(FIXTURES / "mscred_cell.pt").items()}
  arrays = _arrays("mscred_cell")
  channels_last = lambda a: jnp.asarray(np.moveaxis(a, 1, -1))
  x, h, c = (channels_last(arrays[k]) for k in ("x", "h", "c"))
  cell = mscred.ConvLSTMCell(features=h.shape[-1])
  shapes = jax.eval_shape(lambda: cell.init(jax.random.PRNGKey(0), (h, c), x))["params"]
  params = convert.torch_to_flax(state_dict, mscred_twin.conv_lstm_cell("cell", "cell"),
                                 {"cell": shapes})["cell"]
  (new_h, new_c), _ = cell.apply({"params": params}, (h, c), x)
  np.testing.assert_allclose(new_h, channels_last(arrays["new_h"]), rtol=0, atol=ATOL)
  np.testing.assert_allclose(new_c, channels_last(arrays["new_c"]), rtol=0, atol=ATOL)
