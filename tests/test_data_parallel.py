"""Data parallel training: 1 device, 4 devices and 2 processes give the same loss curve.

Every run is a subprocess (the device count is fixed when JAX starts); all run
at once, in a module fixture, since most of their time is spent starting JAX.
"""

import json
import os
import pathlib
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from tsad_jax import train

ROOT = pathlib.Path(__file__).resolve().parent.parent
TIMEOUT = 240
# Trains configs/tiny.py (2 epochs) with train.fit and prints, as JSON, its losses and the
# layout of every batch the step received (devices, shards here, batch rows a shard); then, on
# several devices, asks for a batch size they cannot split.
FIT = """
import json, pathlib, sys
import jax
from configs import tiny
from tsad_jax import run_setup, train

config = tiny.get_config()
setup = run_setup.build(config)
batches = []
make_member_step = train.make_member_step

def recording(*args, **kwargs):
  step = make_member_step(*args, **kwargs)
  def wrapped(states, series, starts, key, active):
    batches.append([len(starts.sharding.device_set), len(starts.addressable_shards),
                    starts.addressable_shards[0].data.shape[-1]])
    return step(states, series, starts, key, active)
  return wrapped

train.make_member_step = recording
fit = lambda folder: train.fit(config, setup.prepared, pathlib.Path(sys.argv[1]) / folder,
                               model_lib=setup.model_lib, model=setup.model)
history, layouts = fit("run").history, list(batches)
config.train.batch_size, error = 30, None
try:
  if len(jax.devices()) > 1:
    fit("uneven")
except ValueError as e:
  error = str(e)
print(json.dumps({"history": history, "batches": layouts, "uneven_error": error}))
"""


def _env(devices: int) -> dict:
  return {**os.environ, "JAX_PLATFORMS": "cpu",
          "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}


def _start(args: list[str], devices: int) -> subprocess.Popen:
  return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=_env(devices), text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _finish(process: subprocess.Popen) -> str:
  try:
    out, err = process.communicate(timeout=TIMEOUT)
  except subprocess.TimeoutExpired:
    process.kill()
    out, err = process.communicate()
  assert process.returncode == 0, f"{process.args} failed:\n{err[-3000:]}"
  return out


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """Outputs of: train.fit on 1 and on 4 devices; launch.train in 2 processes of 1 device."""
  folder = tmp_path_factory.mktemp("data_parallel")
  address = f"localhost:{_free_port()}"
  launch = ["-m", "launch.train", "--config=configs/tiny.py", f"--workdir={folder / 'multi'}",
            f"--coordinator_address={address}", "--num_processes=2"]
  started = {
      "one": _start(["-c", FIT, str(folder / "one")], devices=1),
      "four": _start(["-c", FIT, str(folder / "four")], devices=4),
      **{f"process{i}": _start([*launch, f"--process_id={i}"], devices=1) for i in range(2)},
  }
  try:
    out = {name: _finish(process) for name, process in started.items()}
  finally:  # a failed run leaves its partners waiting: stop them
    for process in started.values():
      if process.poll() is None:
        process.kill()
  return {"one": json.loads(out["one"]), "four": json.loads(out["four"]),
          "stdout": [out["process0"], out["process1"]], "folder": folder}


def _curve(history: list[dict]) -> np.ndarray:
  return np.array([[h["train_loss"], h["val_loss"]] for h in history])


def test_four_devices_split_every_batch_and_follow_the_one_device_loss_curve(trained):
  one, four = trained["one"], trained["four"]
  assert {tuple(b) for b in one["batches"]} == {(1, 1, 32)}
  assert {tuple(b) for b in four["batches"]} == {(4, 4, 8)}  # tiny's 32 windows, 8 a device
  assert len(one["history"]) == len(four["history"]) == 2
  np.testing.assert_allclose(_curve(four["history"]), _curve(one["history"]), rtol=1e-5)
  # Saved by 4 devices, loaded here on 1.
  params = [train.load_params(trained["folder"] / name / "run") for name in ("one", "four")]
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5), *params)


def test_a_batch_size_the_devices_cannot_split_is_a_clear_error(trained):
  error = trained["four"]["uneven_error"]
  assert "config.train.batch_size=30" in error and "number of devices (4)" in error


def test_two_processes_train_together_and_only_process_0_writes(trained):
  run_dirs = list((trained["folder"] / "multi").glob("*/*/*/*"))
  assert len(run_dirs) == 1, run_dirs
  for name in ("config.json", "metrics.json", "summary.json", "scores.npz"):
    assert (run_dirs[0] / name).is_file(), name
  assert "Run written to" in trained["stdout"][0] and "Run written" not in trained["stdout"][1]
  history = json.loads((run_dirs[0] / "metrics.json").read_text())
  np.testing.assert_allclose(_curve(history), _curve(trained["one"]["history"]), rtol=1e-5)
