"""Every model against its PyTorch twin: a random torch init, converted, computes the
same forward outputs, loss, gradients, scores and Adam step; conversion round-trips."""


import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="interop needs the [torch] extra (CI installs it)")

from interop import convert  # noqa: E402
from interop import pair as pair_lib  # noqa: E402
from interop import parity  # noqa: E402
from tsad_jax import config_names  # noqa: E402

NUM_FEATURES = 5

# case id -> (config file, window, model overrides): small enough to compile in seconds.
CASES = {
    "lstm_ae": ("smd_lstmae", 12, {"hidden_size": 8}),
    "lstm_ae_pred": ("smd_lstmae_pred", 12, {"hidden_size": 8, "pred_steps": 2}),
    "lstm_ae_clf": ("smd_lstmae_clf", 12, {"hidden_size": 8}),
    "lstm_ae_sigmoid": ("smd_lstmae", 12, {"hidden_size": 8, "output_sigmoid": True}),
    "omni_anomaly": ("smd_omni", 10, {"rnn_hidden": 8, "dense_dim": 8, "nf_layers": 2,
                                      "test_n_z": 2}),
    "transformer": ("smd_transformer", 12, {"d_model": 16, "n_heads": 2, "num_layers": 2,
                                            "d_ff": 32}),
    "mtad_gat": ("smd_mtadgat", 13, {"gru_hid_dim": 8, "fc_hid_dim": 8, "recon_hid_dim": 8}),
    "mtad_gat_gat_vae": ("smd_mtadgat", 13, {"gru_hid_dim": 8, "fc_hid_dim": 8,
                                             "recon_hid_dim": 8, "use_gatv2": False,
                                             "recon_head": "vae", "vae_latent_dim": 4}),
    "mscred": ("smd_mscred", 8, {"scales": "2,4", "gap": 2, "steps": 3, "filters": "2,3,4,5"}),
    "sd_mae_linear": ("smd_sdmae", 12, {"d_model": 16, "nhead": 2, "num_encoder_layers": 1,
                                        "dim_feedforward": 32, "num_patches": 4,
                                        "patch_size": 3, "mask_last_n": 3}),
    "sd_mae_cnn_first": ("smd_sdmae", 12, {"d_model": 16, "nhead": 2, "num_encoder_layers": 1,
                                           "dim_feedforward": 32, "num_patches": 4,
                                           "patch_size": 3, "mask_last_n": 3,
                                           "patchify_mode": "cnn_first",
                                           "score_points": "masked"}),
    "sd_mae_patch_cnn": ("smd_sdmae", 12, {"d_model": 16, "nhead": 2, "num_encoder_layers": 1,
                                           "dim_feedforward": 32, "num_patches": 4,
                                           "patch_size": 3, "mask_last_n": 3,
                                           "patchify_mode": "patch_cnn"}),
}


def _model_config(case: str):
  file, window, overrides = CASES[case]
  config = config_names.load(file)
  config.model.update(overrides)
  return config.model, window


def _pair(case: str, seed: int = 0) -> pair_lib.Pair:
  model_config, window = _model_config(case)
  return pair_lib.make_pair(model_config, num_features=NUM_FEATURES, window=window, seed=seed)


def _windows(pair: pair_lib.Pair, batch: int = 4) -> np.ndarray:
  rng = np.random.default_rng(1)
  return rng.uniform(size=(batch, pair.window, NUM_FEATURES)).astype(np.float32)


@pytest.mark.parametrize("case", sorted(CASES))
def test_key_map_covers_every_flax_parameter_once(case):
  model_config, window = _model_config(case)
  shapes = convert.flax_shapes(model_config, num_features=NUM_FEATURES, window=window)
  convert.check_entries(convert.model_entries(model_config, num_features=NUM_FEATURES,
                                              window=window), shapes)


@pytest.mark.parametrize("case", sorted(CASES))
def test_torch_to_flax_to_torch_is_bit_exact(case):
  pair = _pair(case, seed=3)
  state_dict = {k: v.detach().numpy() for k, v in pair.module.state_dict().items()}
  back = convert.flax_to_torch(pair.params, pair.entries)
  assert list(back) == list(state_dict)
  for key, value in state_dict.items():
    assert back[key].dtype == value.dtype and np.array_equal(back[key], value), key


@pytest.mark.parametrize("case", sorted(CASES))
def test_outputs_loss_and_scores_match(case):
  pair = _pair(case)
  diffs = parity.compare(pair, _windows(pair))
  assert [d.quantity for d in diffs if not d.quantity.startswith("forward")][0] == "loss"
  assert any(d.quantity in ("score", "score_parts") for d in diffs)
  assert all(d.ok for d in diffs), pair_lib.report(diffs)


@pytest.mark.parametrize("case", sorted(CASES))
def test_gradients_and_one_adam_step_match_in_float64(case):
  pair = _pair(case)
  diffs = parity.gradients_and_adam_step(pair, _windows(pair))
  keys = list(pair.module.state_dict())
  assert [d.quantity for d in diffs] == ([f"grad {k}" for k, _ in
                                          pair.module.named_parameters()]
                                         + [f"adam {k}" for k in keys])
  assert all(d.ok for d in diffs), pair_lib.report(diffs)


def test_float64_checks_catch_a_difference_float32_rounding_would_hide():
  """One weight off by 1e-6 of itself, the size of float32 rounding: the float64
  gradient check flags it, so a formula or layout error cannot hide in the noise."""
  pair = _pair("mtad_gat")
  with torch.no_grad():
    weight = pair.module.get_parameter("recon_model.fc.weight")
    weight[0, 0] *= 1.0 + 1e-6
  above = [d.quantity for d in parity.gradients_and_adam_step(pair, _windows(pair))
           if not d.ok]
  assert "grad recon_model.fc.weight" in above


def test_mscred_twin_reads_the_same_chosen_scales():
  model_config, window = _model_config("mscred")
  model_config.score_scales = "4"
  pair = pair_lib.make_pair(model_config, num_features=NUM_FEATURES, window=window)
  windows = _windows(pair)
  score = np.asarray(pair.model_lib.score(pair.model, pair.params, windows, rng=None))
  with torch.no_grad():
    score_torch = pair.twin.score(pair.module, torch.from_numpy(windows), None).numpy()
  np.testing.assert_allclose(score, score_torch, atol=parity.OUTPUT_ATOL)
  every_scale = pair.model.clone(score_scales=())
  assert np.all(score < np.asarray(pair.model_lib.score(every_scale, pair.params, windows,
                                                         rng=None)))
