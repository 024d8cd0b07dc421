"""launch.detect: a trained run on a new unlabeled CSV, whole or streamed, killed and restarted."""

import hashlib
import json
import os
import pathlib
import pickle
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from bench import streaming
from configs import tiny
from tsad_jax import deployment
from tsad_jax import detection
from tsad_jax import experiment
from tsad_jax import stream
from tsad_jax.data import DataError
from tsad_jax.data import csv_files
from tsad_jax.data import load

ROOT = pathlib.Path(__file__).resolve().parent.parent
QUIET = detection.Options(progress=False)


def _tiny_run(workdir: pathlib.Path, **fields) -> pathlib.Path:
  config = tiny.get_config()
  config.threshold.methods = "dspot,pot"  # a streaming threshold raises the alarms
  config.eval.smoothing, config.eval.smoothing_sigma = "gaussian", 2.0
  for field, value in fields.items():
    section, name = field.split("__")
    config[section][name] = value
  return experiment.train_and_evaluate(config, workdir)


def _write_input(path: pathlib.Path, values: np.ndarray, names) -> None:
  csv_files.write_series(path, values, names, start="2026-01-01", points_per_day=24 * 60)


@pytest.fixture(scope="module", name="run")
def _run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("detect")
  run_dir = _tiny_run(workdir)
  entity = load(tiny.get_config().data).entities[0]
  names = load(tiny.get_config().data).feature_names
  _write_input(workdir / "today.csv", entity.test, names)
  return run_dir, workdir / "today.csv", entity, names


def _folder_digest(folder: pathlib.Path) -> dict[str, str]:
  return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
          for p in sorted(folder.rglob("*")) if p.is_file()}


def test_detect_on_the_test_series_gives_the_runs_own_scores_and_alarms(run, tmp_path):
  run_dir, today, _, _ = run
  before = _folder_digest(run_dir)
  summary = detection.run(deployment.load(run_dir), str(today), tmp_path / "out", QUIET)
  ours = pd.read_csv(tmp_path / "out" / "scores.csv")
  theirs = pd.read_csv(run_dir / "scores.csv")
  np.testing.assert_allclose(ours["score"], theirs["score"], rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(ours["alarm"], theirs["alarm"])
  assert ours["timestamp"].iloc[0] == "2026-01-01 00:00:00"
  events = pd.read_csv(tmp_path / "out" / "alarms.csv")
  assert summary["rows"] == len(ours) and summary["alarm_events"] == len(events) > 0
  assert events["rows"].sum() == ours["alarm"].sum()
  shares = events["top_features"].str.split(";").str[0].str.split(":").str[1].astype(float)
  assert ((shares > 0) & (shares <= 1)).all()
  after = _folder_digest(run_dir)
  assert {k: v for k, v in after.items() if k in before} == before  # nothing overwritten
  assert all(k.startswith("detect/") for k in after.keys() - before.keys())


def test_any_split_of_a_series_into_chunks_gives_the_same_scores_and_alarms(run):
  run_dir, _, entity, _ = run
  dep = deployment.load(run_dir)
  series = entity.test
  _, whole = stream.update(dep, stream.start(dep), series)
  rng = np.random.default_rng(0)
  cuts = np.sort(rng.choice(np.arange(1, len(series)), size=25, replace=False))
  state, pieces = stream.start(dep), []
  for chunk in np.split(series, cuts):
    state, scored = stream.update(dep, state, chunk)
    pieces.append(scored)
  for field in ("score", "threshold", "alarm", "per_feature"):
    np.testing.assert_array_equal(np.concatenate([getattr(p, field) for p in pieces]),
                                  getattr(whole, field), err_msg=field)
  assert whole.alarm.any() and not whole.alarm.all()


def test_gaps_are_refused_by_default_and_filled_when_asked(run, tmp_path):
  run_dir, today, _, names = run
  frame = pd.read_csv(today)
  frame.loc[[40, 41, 300], names[1]] = np.nan
  gappy = tmp_path / "gappy.csv"
  frame.to_csv(gappy, index=False)
  dep = deployment.load(run_dir)
  with pytest.raises(DataError, match=rf"gappy.csv: line 42, column '{names[1]}'.*--missing"):
    detection.run(dep, str(gappy), tmp_path / "refused", QUIET)
  for missing in ("ffill", "interpolate"):
    options = detection.Options(progress=False, missing=missing)
    detection.run(dep, str(gappy), tmp_path / missing, options)
    filled = frame[list(names)].copy()
    filled = filled.ffill() if missing == "ffill" else filled.interpolate()
    reference = tmp_path / f"{missing}-reference.csv"
    _write_input(reference, filled.to_numpy(), names)
    detection.run(dep, str(reference), tmp_path / f"{missing}-ref", QUIET)
    got = pd.read_csv(tmp_path / missing / "scores.csv")["score"]
    want = pd.read_csv(tmp_path / f"{missing}-ref" / "scores.csv")["score"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=missing)


@pytest.mark.parametrize("edit, message", [
    (lambda f, n: f.drop(columns=[n[0]]), r"lacks the run's feature columns cpu_user"),
    (lambda f, n: f.assign(extra=1.0), r"not the run's features: extra"),
    (lambda f, n: f.assign(**{n[2]: f[n[2]].astype(object).where(f.index != 9, "high")}),
     r"line 11, column 'memory_used': 'high' is not a number"),
    (lambda f, n: f.drop(index=[5]).sort_index().iloc[::-1], r"goes back from the row before"),
    (lambda f, n: pd.concat([f.iloc[:8], f.iloc[7:]]), r"line 10.*repeats the row before"),
    (lambda f, n: f.iloc[:10], r"has 10 rows, fewer than the run's window \(16\)"),
    (lambda f, n: f.iloc[:0], r"fewer than the run's window"),
    (lambda f, n: f[[*reversed(f.columns)]], None),  # any column order is fine
])
def test_bad_input_gets_one_clear_error_naming_file_line_and_column(run, tmp_path, edit, message):
  run_dir, today, _, names = run
  path = tmp_path / "input.csv"
  edit(pd.read_csv(today), names).to_csv(path, index=False)
  dep = deployment.load(run_dir)
  if message is None:
    assert detection.run(dep, str(path), tmp_path / "out", QUIET)["rows"] == 600
    return
  with pytest.raises(DataError, match=message) as error:
    detection.run(dep, str(path), tmp_path / "out", QUIET)
  assert "input.csv" in str(error.value)


def test_empty_file_truncated_last_line_and_finished_output_are_clear_errors(run, tmp_path):
  run_dir, today, _, _ = run
  dep = deployment.load(run_dir)
  empty = tmp_path / "empty.csv"
  empty.write_text("")
  with pytest.raises(DataError, match="empty.csv is empty"):
    detection.run(dep, str(empty), tmp_path / "a", QUIET)
  torn = tmp_path / "torn.csv"
  torn.write_text(today.read_text()[:-25])  # the last line cut in the middle
  with pytest.raises(DataError, match=r"torn.csv: line 601 has \d cells but the header has 5"):
    detection.run(dep, str(torn), tmp_path / "b", QUIET)
  detection.run(dep, str(today), tmp_path / "c", QUIET)
  with pytest.raises(FileExistsError, match="holds a finished detection"):
    detection.run(dep, str(today), tmp_path / "c", QUIET)


def _detect_command(run_dir, source, out, *extra) -> list[str]:
  return [sys.executable, "-m", "launch.detect", f"--run={run_dir}", f"--input={source}",
          f"--output={out}", "--noprogress", *extra]


def test_the_cli_prints_one_line_for_a_missing_input_or_run(run, tmp_path):
  run_dir, _, _, _ = run
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  missing = tmp_path / "nothing.csv"
  for run_arg, needle in [(run_dir, "nothing.csv does not exist"),
                          (tmp_path, "config.json not found")]:
    done = subprocess.run(_detect_command(run_arg, missing, tmp_path / "out"), cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: ") and needle in done.stderr


def _one_device() -> dict:
  """The environment of a detect process on one CPU device, as this test process has: the
  split of a micro-batch over devices may change the scores' last float digits."""
  return {**os.environ, "JAX_PLATFORMS": "cpu", "JAX_NUM_CPU_DEVICES": "1"}


def test_rows_piped_on_standard_input_score_as_the_file_does(run, tmp_path):
  run_dir, today, _, _ = run
  detection.run(deployment.load(run_dir), str(today), tmp_path / "file", QUIET)
  with open(today, "rb") as source:
    subprocess.run(_detect_command(run_dir, "-", tmp_path / "piped"), cwd=ROOT, stdin=source,
                   env=_one_device(), check=True, timeout=300, capture_output=True)
  for name in ("scores.csv", "alarms.csv"):
    assert (tmp_path / "piped" / name).read_text() == (tmp_path / "file" / name).read_text()


def test_windows_split_over_four_devices_score_as_on_one(run, tmp_path):
  run_dir, today, _, _ = run
  detection.run(deployment.load(run_dir), str(today), tmp_path / "one", QUIET)
  env = {**os.environ, "JAX_PLATFORMS": "cpu",
         "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
  subprocess.run(_detect_command(run_dir, today, tmp_path / "four"), cwd=ROOT, env=env,
                 check=True, timeout=300, capture_output=True)
  assert json.loads((tmp_path / "four" / "summary.json").read_text())["devices"] == 4
  one, four = (pd.read_csv(tmp_path / folder / "scores.csv") for folder in ("one", "four"))
  np.testing.assert_allclose(four["score"], one["score"], rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(four["alarm"], one["alarm"])
  assert four["alarm"].any()


def _wait_for(condition, timeout=240.0):
  deadline = time.monotonic() + timeout
  while not condition():
    if time.monotonic() > deadline:
      raise TimeoutError("the detect process did not get there in time")
    time.sleep(0.05)


def test_follow_survives_sigkill_and_equals_batch_on_a_real_smd_machine(data_root, tmp_path):
  config = tiny.get_config("smd")
  config.data.entity = "machine-1-6"
  config.train.max_epochs = 1
  config.threshold.methods = "dspot,pot"
  config.threshold.pot_level = 0.98
  config.threshold.dspot_depth = 100
  config.data.val_fraction = 0.1
  config.eval.smoothing, config.eval.smoothing_sigma = "gaussian", 2.0
  run_dir = experiment.train_and_evaluate(config, tmp_path / "runs")
  dataset = load(config.data)
  test = dataset.entities[0].test[:6000]
  whole = tmp_path / "whole.csv"
  _write_input(whole, test, dataset.feature_names)
  env = {name: value for name, value in os.environ.items()
         if name not in ("XLA_FLAGS", "JAX_NUM_CPU_DEVICES")} | {"JAX_PLATFORMS": "cpu"}
  subprocess.run(_detect_command(run_dir, whole, tmp_path / "batch"), cwd=ROOT, env=env,
                 check=True, timeout=600, capture_output=True)
  summary = json.loads((tmp_path / "batch" / "summary.json").read_text())
  # One device per core by default, as far as each gets MIN_WINDOWS_PER_DEVICE of the 64.
  cores = len(os.sched_getaffinity(0))
  assert summary["devices"] == min(cores, 64 // stream.MIN_WINDOWS_PER_DEVICE)
  data = whole.read_bytes()
  lines = data.splitlines(keepends=True)
  growing = tmp_path / "growing.csv"
  written = len(b"".join(lines[:1000])) + 7  # and a line still being written
  growing.write_bytes(data[:written])
  follow = _detect_command(run_dir, growing, tmp_path / "stream", "--follow",
                           "--checkpoint_rows=2500", "--idle_seconds=3")
  process = subprocess.Popen(follow, cwd=ROOT, env=env, stderr=subprocess.PIPE)
  scores = tmp_path / "stream" / "scores.csv"
  _wait_for(lambda: scores.exists() and scores.stat().st_size > 100_000)
  rng = np.random.default_rng(0)
  kill_at = len(b"".join(lines[:4000]))
  while written < kill_at:  # rows keep arriving, cut anywhere, while it scores them
    piece = int(rng.integers(5_000, 40_000))
    with open(growing, "ab") as f:
      f.write(data[written:min(written + piece, kill_at)])
    written = min(written + piece, kill_at)
    time.sleep(0.02)
  process.send_signal(signal.SIGKILL)
  process.wait()
  saved = pickle.loads((tmp_path / "stream" / detection.STATE_FILE).read_bytes())
  # Killed between checkpoints: rows were written after the last saved state.
  assert saved.output_bytes["scores.csv"] < scores.stat().st_size
  with open(growing, "ab") as f:
    f.write(data[written:])
  restarted = subprocess.run(follow, cwd=ROOT, env=env, timeout=600, capture_output=True,
                             text=True)
  assert restarted.returncode == 0, restarted.stderr
  streamed = pd.read_csv(scores)
  batch = pd.read_csv(tmp_path / "batch" / "scores.csv")
  pd.testing.assert_frame_equal(streamed, batch)
  # A stream stopped while idle keeps its last event open; batch closed it at the end.
  stream_events = pd.read_csv(tmp_path / "stream" / "alarms.csv")
  batch_events = pd.read_csv(tmp_path / "batch" / "alarms.csv")
  ended = batch_events[batch_events["end"] < batch["timestamp"].iloc[-1]]
  pd.testing.assert_frame_equal(stream_events, ended.reset_index(drop=True))
  assert len(stream_events) > 0


def test_the_detect_benchmark_times_whole_follow_jobs_fed_on_standard_input(run):
  run_dir, _, entity, _ = run
  jobs = streaming.detect_jobs("", 1, str(run_dir))
  assert [job["rows"] for job in jobs] == [len(entity.test)]  # every row, the stream ended
  assert 0 < jobs[0]["seconds"] and jobs[0]["rows/s"] == len(entity.test) / jobs[0]["seconds"]
