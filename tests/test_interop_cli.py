"""A torch checkpoint becomes an ordinary run (convert), a run becomes a torch
checkpoint (export), training starts from one, and a misfit is refused."""

import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="interop needs the [torch] extra (CI installs it)")

from configs import tiny  # noqa: E402
from interop import convert  # noqa: E402
from interop import torch_models  # noqa: E402
from tsad_jax import experiment  # noqa: E402
from tsad_jax import runs  # noqa: E402
from tsad_jax import summaries  # noqa: E402
from tsad_jax import train  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _checkpoint(tmp_path: pathlib.Path, config) -> tuple[pathlib.Path, dict]:
  """A freshly initialised twin of the tiny config's model, saved as a state_dict."""
  torch.manual_seed(0)
  module = torch_models.get(config.model.name).build(
      config.model, num_features=config.data.synthetic.num_features, window=config.data.window)
  path = tmp_path / "model.pt"
  torch.save(module.state_dict(), path)
  return path, {k: v.numpy() for k, v in module.state_dict().items()}


def _run_module(*args: str) -> str:
  done = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True,
                        check=False)
  assert done.returncode == 0, done.stderr[-3000:]
  return done.stdout


def _entries(config):
  return convert.model_entries(config.model, num_features=config.data.synthetic.num_features,
                               window=config.data.window)


def test_convert_makes_a_run_that_evaluates_and_exports_back_bit_exact(tmp_path):
  config = tiny.get_config()
  checkpoint, state_dict = _checkpoint(tmp_path, config)
  out = _run_module("interop.convert", "--config=configs/tiny.py",
                    f"--torch_checkpoint={checkpoint}", f"--workdir={tmp_path / 'runs'}")
  run_dir = pathlib.Path(out.split("into the run ")[1].split()[0])
  assert runs.load_config(run_dir).init.torch_checkpoint == str(checkpoint)

  saved = convert.flax_to_torch(train.load_params(run_dir), _entries(config))
  assert all(np.array_equal(saved[k], v) for k, v in state_dict.items())
  summary, _ = experiment.evaluate_run(run_dir)
  assert summaries.same_figures(summary, summaries.load_summary(run_dir)) == []

  exported = tmp_path / "exported.pt"
  _run_module("interop.export", f"--run={run_dir}", f"--out={exported}")
  back = torch.load(exported, weights_only=True)
  assert list(back) == list(state_dict)
  assert all(np.array_equal(back[k].numpy(), v) for k, v in state_dict.items())
  with pytest.raises(FileExistsError, match="exported.pt exists"):
    convert.save_state_dict(saved, exported)


def _train_from(config, workdir):
  """Trains as launch.train does: the library gets interop's converter passed in."""
  return experiment.train_and_evaluate(config, workdir, params_from=convert.start_params)


def test_training_starts_from_the_torch_checkpoint(tmp_path):
  config = tiny.get_config()
  checkpoint, state_dict = _checkpoint(tmp_path, config)
  config.init.torch_checkpoint = str(checkpoint)
  config.train.max_epochs = 1
  config.optim.learning_rate = 1e-6  # Adam moves each parameter by at most ~1e-6 a step
  config.eval.plots = False
  config.threshold.methods = "percentile"
  run_dir = _train_from(config, tmp_path / "runs")
  assert runs.load_config(run_dir).train.max_epochs == 1
  trained = convert.flax_to_torch(train.load_params(run_dir), _entries(config))
  moved = max(np.abs(trained[k] - v).max() for k, v in state_dict.items())
  assert 0 < moved < 1e-4  # trained, from the checkpoint (a fresh init differs by ~0.1)


def test_a_checkpoint_that_does_not_fit_is_refused_and_nothing_is_written(tmp_path):
  config = tiny.get_config()
  checkpoint, state_dict = _checkpoint(tmp_path, config)
  broken = dict(state_dict)
  first, second, *_ = list(broken)
  del broken[first]
  broken[second] = np.zeros((3, 3), np.float32)
  broken["head.weight"] = np.zeros(2, np.float32)
  torch.save({k: torch.from_numpy(np.asarray(v)) for k, v in broken.items()}, checkpoint)
  config.init.torch_checkpoint = str(checkpoint)
  with pytest.raises(convert.ConversionError) as error:
    _train_from(config, tmp_path / "runs")
  message = str(error.value)
  assert str(checkpoint) in message
  assert f"missing keys: {first}" in message
  assert "unexpected keys: head.weight" in message
  assert f"{second}: (3, 3) in the checkpoint" in message
  assert not (tmp_path / "runs").exists()

  config.init.torch_checkpoint = str(tmp_path / "absent.pt")
  with pytest.raises(FileNotFoundError, match="absent.pt: no such torch checkpoint"):
    _train_from(config, tmp_path / "runs")


def test_the_library_alone_refuses_a_torch_checkpoint_and_writes_nothing(tmp_path):
  config = tiny.get_config()
  checkpoint, _ = _checkpoint(tmp_path, config)
  config.init.torch_checkpoint = str(checkpoint)
  with pytest.raises(ValueError, match="launch.train"):
    experiment.train_and_evaluate(config, tmp_path / "runs")
  assert not (tmp_path / "runs").exists()


def test_conversion_writes_float32_in_the_flax_tree_shape():
  config = tiny.get_config()
  shapes = convert.flax_shapes(config.model, num_features=4, window=config.data.window)
  module = torch_models.get("lstm_ae").build(config.model, num_features=4,
                                             window=config.data.window)
  state_dict = {k: v.double().numpy() for k, v in module.state_dict().items()}
  params = convert.torch_to_flax(state_dict, _entries(config), shapes)
  assert jax.tree.structure(params) == jax.tree.structure(shapes)
  assert all(leaf.dtype == np.float32 for leaf in jax.tree.leaves(params))


def test_parity_program_on_real_smd_windows(data_root):
  out = _run_module("interop.parity", "--config=configs/smd_lstmae.py:machine-1-6",
                    "--windows=data", "--batch=2", "--config.model.hidden_size=8",
                    f"--config.data.root={data_root / 'ServerMachineDataset'}")
  assert "grad encoder.lstm_enc.weight_ih_l0" in out and "score " in out
  assert "100 steps: encoder.lstm_enc.weight_ih_l0" in out
  assert out.strip().endswith("quantities within tolerance.") and "ABOVE" not in out


def test_parity_report_flags_a_difference_above_tolerance():
  from interop import pair as pair_lib  # noqa: PLC0415

  fine = pair_lib.difference("loss", np.float32(1.0), np.float32(1.0 + 1e-7), tolerance=1e-5)
  off = pair_lib.difference("score", np.ones(3), np.ones(3) + 1e-3, tolerance=1e-5)
  assert fine.ok and not off.ok
  lines = pair_lib.report([fine, off]).splitlines()
  assert "ABOVE" not in lines[1] and lines[2].endswith("<-- ABOVE")
