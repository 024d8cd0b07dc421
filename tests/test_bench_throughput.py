"""bench.throughput times a model in both frameworks from the same parameters."""

import pytest

pytest.importorskip("torch", reason="the PyTorch column needs the [torch] extra (CI installs it)")

from bench import throughput  # noqa: E402


def test_one_model_in_both_frameworks(data_root, monkeypatch):
  monkeypatch.setenv("TSAD_JAX_DATA_ROOT", str(data_root))
  row = throughput.measure("smd_lstmae", "machine-1-6", steps=1, score_batches=1,
                           with_torch=True)
  assert row.batch == 256
  rates = (row.train_jax, row.score_jax, row.train_torch, row.score_torch)
  assert all(rate > 0 for rate in rates) and row.whole_test_seconds > 0
  line = throughput.table([row]).splitlines()[-1]
  assert line.startswith("| smd_lstmae | 256 |")
  assert f"{row.train_jax / row.train_torch:.2f}x" in line



def test_step_phases_in_both_frameworks(data_root, monkeypatch):
  monkeypatch.setenv("TSAD_JAX_DATA_ROOT", str(data_root))
  ms = throughput.phases("smd_lstmae", "machine-1-6", steps=1)
  assert set(ms) == {f"{framework} {phase}" for framework in ("jax", "torch")
                     for phase in ("forward", "forward+backward", "step")}
  assert all(value > 0 for value in ms.values())
