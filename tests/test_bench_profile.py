"""bench.profile: self time per XLA op from a Perfetto trace, and a traced real step."""

import gzip
import json

import pytest

from bench import profile


def _op(name, ts, dur, tid=1):
  return {"ph": "X", "pid": 7, "tid": tid, "ts": ts, "dur": dur, "name": name,
          "args": {"hlo_op": name}}


def test_self_time_subtracts_nested_ops_per_thread(tmp_path):
  events = [
      _op("while.3", 0, 100), _op("fusion.1", 10, 20), _op("dot.2", 40, 50),
      _op("copy", 0, 50, tid=2), _op("fusion.7", 60, 10, tid=2),
      {"ph": "X", "pid": 7, "tid": 1, "ts": 0, "dur": 500, "name": "ThunkExecutor::Execute"},
      {"ph": "M", "pid": 7, "name": "process_name", "args": {"name": "/host:CPU"}},
  ]
  trace = tmp_path / "perfetto_trace.json.gz"
  with gzip.open(trace, "wt") as f:
    json.dump({"traceEvents": events}, f)
  got = profile.op_self_seconds(trace)
  assert got == pytest.approx({"while": 30e-6, "fusion": 30e-6, "dot": 50e-6, "copy": 50e-6})


def test_op_kinds():
  assert [profile.kind_of(name) for name in (
      "ynn_fusion.3", "convolution-base-dilated", "while", "bitcast_dynamic-update-slice_fusion",
      "copy.5", "wrapped_broadcast", "multiply_add_fusion", "broadcast_add_fusion", "fusion.2",
      "wrapped_tanh", "rng-bit-generator")] == [
          "matmul/conv", "matmul/conv", "loop control", "data movement", "data movement",
          "data movement", "elementwise/reduce", "elementwise/reduce", "elementwise/reduce",
          "elementwise/reduce", "other"]


def test_a_real_training_step_is_traced(data_root, monkeypatch, tmp_path):
  monkeypatch.setenv("TSAD_JAX_DATA_ROOT", str(data_root))
  got = profile.profile_training("smd_lstmae", "machine-1-6", steps=1, trace_dir=tmp_path)
  assert got["step_ms"] > 0 and got["busy_ms"] > 0
  assert got["kinds"]["matmul/conv"] > 0  # the LSTM's gate matmuls were seen
  assert sum(got["kinds"].values()) == pytest.approx(got["busy_ms"])
  assert list(tmp_path.glob("plugins/profile/*/perfetto_trace.json.gz"))
