"""100 steps of the project's optimizer chain on real SMD windows: every model's Flax side
and its PyTorch twin (the same chain on torch.optim.Adam) end with the same parameters."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="interop needs the [torch] extra (CI installs it)")

from interop import pair as pair_lib  # noqa: E402
from interop import parity  # noqa: E402
from interop import trajectory  # noqa: E402
from tests.test_interop_parity import CASES  # noqa: E402
from tsad_jax import config_names  # noqa: E402

STEPS, BATCH = 100, 8
NAN_STEPS = (40, 41)  # batches holding a NaN: both sides must skip them
# One case per model file.
MODELS = ["lstm_ae_clf", "mscred", "mtad_gat", "omni_anomaly", "sd_mae_linear", "transformer"]


def _config(case: str, data_root):
  file, window, overrides = CASES[case]
  config = config_names.load(file)
  config.model.update(overrides)
  config.data.update(root=str(data_root / "ServerMachineDataset"), entity="machine-1-6",
                     window=window)
  # Every part of the chain at work: a cosine schedule, L2, and a clip norm that
  # the first steps' gradients exceed.
  config.optim.update(schedule="cosine", l2=1e-4, grad_clip_norm=0.05)
  return config


def _run(case: str, data_root):
  config = _config(case, data_root)
  batches = parity.data_windows(config, STEPS * BATCH, seed=0, part="train").reshape(
      STEPS, BATCH, config.data.window, -1)
  for step in NAN_STEPS:
    batches[step, 0, 0, 0] = np.nan
  pair = pair_lib.make_pair(config.model, num_features=batches.shape[-1],
                            window=config.data.window)
  return config, pair, batches


@pytest.mark.parametrize("case", MODELS)
def test_hundred_optimizer_steps_match_the_twin(case, data_root):
  config, pair, batches = _run(case, data_root)
  diffs = trajectory.compare(pair, batches, config.optim)
  assert len(diffs) == 3 + len(pair.module.state_dict())
  assert all(d.ok for d in diffs), pair_lib.report([d for d in diffs if not d.ok])


def test_the_chain_skips_non_finite_steps_and_clips(data_root):
  config, pair, batches = _run("mtad_gat", data_root)
  flax_run, draws = trajectory.flax_steps(pair, batches, config.optim)
  assert flax_run.skipped == len(NAN_STEPS)
  assert np.isnan(flax_run.losses[list(NAN_STEPS)]).all()
  assert np.isfinite(np.delete(flax_run.losses, NAN_STEPS)).all()
  assert flax_run.losses[-1] < flax_run.losses[0]  # it trains

  # Each part of the chain shows: the twin without it ends elsewhere.
  for part in ({"grad_clip_norm": 0.0}, {"l2": 0.0}, {"schedule": "constant"}):
    optim = config.optim.copy_and_resolve_references()
    optim.update(part)
    other = trajectory.torch_steps(pair, batches, optim, draws)
    worst = max(np.max(np.abs(flax_run.params[k] - v)) for k, v in other.params.items())
    assert worst > 1e3 * trajectory.PARAM_ATOL, part
