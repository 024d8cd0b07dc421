"""Loaders of SMD, SMAP/MSL and CSV data: fake folders in the real layouts, then the real data."""

import json
import os
from pathlib import Path
import warnings

import ml_collections
import numpy as np
import pytest

from configs.common import data_config
from tsad_jax import data
from tsad_jax.data import cache
from tsad_jax.data import checks
from tsad_jax.data import csv_files
from tsad_jax.data import smap_msl
from tsad_jax.data import smd
from tsad_jax.data import windows
from tsad_jax.data.prepare import fit_and_val_starts
from tsad_jax.data.prepare import prepare
from tsad_jax.data.types import DataError
from tsad_jax.data.types import Segment


def _config(dataset, root, entity="", cache_dir=""):
  config = data_config()
  config.dataset, config.root, config.entity, config.cache_dir = dataset, str(root), entity, str(
      cache_dir)
  return config


def _write_rows(path, rows):
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text("".join(",".join(str(v) for v in row) + "\n" for row in rows))


# --- SMD ---------------------------------------------------------------------------------------


def _smd_machine(root, name, *, length=40, width=3, seed=0, interpretation=True):
  rng = np.random.default_rng(seed)
  _write_rows(root / "train" / f"{name}.txt", np.round(rng.random((length, width)), 4))
  _write_rows(root / "test" / f"{name}.txt", np.round(rng.random((length + 1, width)), 4))
  labels = np.zeros(length + 1, dtype=int)
  labels[3:6] = 1
  labels[20:21] = 1
  _write_rows(root / "test_label" / f"{name}.txt", labels[:, None])
  if interpretation:
    path = root / "interpretation_label" / f"{name}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("3-6:1,3\n20-21:2\n")


@pytest.fixture(name="smd_root")
def _smd_root(tmp_path):
  root = tmp_path / "ServerMachineDataset"
  _smd_machine(root, "machine-1-1", seed=1)
  _smd_machine(root, "machine-1-2", seed=2)
  return root


def _load_smd(root, entity="machine-1-1", cache_dir=None):
  return data.load(_config("smd", root, entity, cache_dir or root.parent / "cache"))


def test_asd_loads_its_servers_from_the_smd_layout(tmp_path, monkeypatch):
  root = tmp_path / "ASD"
  for i in (1, 2, 10):
    _smd_machine(root, f"omi-{i}", width=19, seed=i)
  dataset = data.load(_config("asd", root, "omi-2", tmp_path / "cache"))
  entity, = dataset.entities
  assert dataset.name == "asd" and entity.name == "omi-2" and dataset.num_features == 19
  assert dataset.points_per_day == 288  # one row every 5 minutes
  assert entity.segments == (Segment(3, 5, (0, 2)), Segment(20, 20, (1,)))
  fleet = _config("asd", root, cache_dir=tmp_path / "cache")
  fleet.entities = "all"
  assert data.fleet_entities(fleet) == ["omi-1", "omi-10", "omi-2"]
  monkeypatch.setenv(data.DATA_ROOT_ENV, str(tmp_path))  # data.root empty: <env>/ASD
  by_env = _config("asd", "", "omi-1", tmp_path / "cache")
  assert data.load(by_env).entities[0].name == "omi-1"
  _assert_refused(lambda: data.load(_config("asd", root, "omi-3", tmp_path / "cache")),
                  "Unknown entity omi-3", "omi-1, omi-10, omi-2")


def test_smd_loads_a_machine(smd_root):
  dataset = _load_smd(smd_root)
  entity, = dataset.entities
  assert entity.name == "machine-1-1" and dataset.num_features == 3
  assert entity.train.shape == (40, 3) and entity.test.shape == (41, 3)
  assert entity.train.dtype == np.float32 and entity.labels.dtype == np.uint8
  assert entity.segments == (Segment(3, 5, (0, 2)), Segment(20, 20, (1,)))


def test_smd_several_and_all(smd_root):
  assert [e.name for e in _load_smd(smd_root, "machine-1-2, machine-1-1").entities] == [
      "machine-1-2", "machine-1-1"]
  assert [e.name for e in _load_smd(smd_root, "all").entities] == ["machine-1-1", "machine-1-2"]


def test_smd_without_interpretation_has_segments_without_dims(tmp_path):
  root = tmp_path / "smd"
  _smd_machine(root, "m", interpretation=False)
  assert _load_smd(root, "m").entities[0].segments == (Segment(3, 5), Segment(20, 20))


def _assert_refused(load, *fragments):
  with pytest.raises(DataError) as raised:
    load()
  message = str(raised.value)
  for fragment in fragments:
    assert fragment in message, f"{fragment!r} not in: {message}"
  return message


def test_smd_refuses_missing_file(smd_root):
  os.remove(smd_root / "test" / "machine-1-1.txt")
  _assert_refused(lambda: _load_smd(smd_root), "machine-1-1.txt", "machine-1-2", "Check data.root")


def test_smd_refuses_unknown_entity(smd_root):
  _assert_refused(lambda: _load_smd(smd_root, "machine-9-9"), "machine-9-9", "machine-1-1",
                  "--config.data.entity")


def test_smd_refuses_ragged_rows(smd_root):
  path = smd_root / "train" / "machine-1-1.txt"
  lines = path.read_text().splitlines()
  lines[4] += ",0.5"
  path.write_text("\n".join(lines) + "\n")
  _assert_refused(lambda: _load_smd(smd_root), str(path), "line 5", "4 columns", "Fix")


def test_smd_refuses_non_numeric(smd_root):
  path = smd_root / "test" / "machine-1-1.txt"
  lines = path.read_text().splitlines()
  lines[6] = "0.1,abc,0.3"
  path.write_text("\n".join(lines) + "\n")
  _assert_refused(lambda: _load_smd(smd_root), str(path), "line 7, column 2", "'abc'", "fix")


@pytest.mark.parametrize("bad", ["nan", "inf"])
def test_smd_refuses_non_finite(smd_root, bad):
  path = smd_root / "train" / "machine-1-1.txt"
  lines = path.read_text().splitlines()
  lines[2] = f"0.1,{bad},0.3"
  path.write_text("\n".join(lines) + "\n")
  _assert_refused(lambda: _load_smd(smd_root), str(path), "1 NaN/inf", "lines 3", "Impute")


def test_smd_refuses_train_test_width_mismatch(smd_root):
  _write_rows(smd_root / "test" / "machine-1-1.txt", np.zeros((41, 4)))
  _assert_refused(lambda: _load_smd(smd_root), "machine-1-1.txt", "3 columns", "4",
                  "same features")


def test_smd_refuses_label_length_mismatch(smd_root):
  path = smd_root / "test_label" / "machine-1-1.txt"
  _write_rows(path, np.zeros((30, 1), dtype=int))
  _assert_refused(lambda: _load_smd(smd_root), str(path), "30 rows", "41", "one label per test row")


def test_smd_refuses_labels_other_than_0_1(smd_root):
  path = smd_root / "test_label" / "machine-1-1.txt"
  labels = np.zeros((41, 1), dtype=int)
  labels[7] = 2
  _write_rows(path, labels)
  _assert_refused(lambda: _load_smd(smd_root), str(path), "0 or 1", "2", "Use 1 for anomalous")


def test_smd_refuses_empty_series(smd_root):
  path = smd_root / "train" / "machine-1-1.txt"
  path.write_text("")
  _assert_refused(lambda: _load_smd(smd_root), str(path), "empty", "at least one row")


def test_smd_refuses_bad_interpretation_line(smd_root):
  path = smd_root / "interpretation_label" / "machine-1-1.txt"
  path.write_text("3-6:1,3\n20-21:99\n")
  _assert_refused(lambda: _load_smd(smd_root), str(path), "line 2", "1-based", "Fix")
  path.write_text("3-6 1,3\n")
  _assert_refused(lambda: _load_smd(smd_root), str(path), "line 1", "start-end:dim")


# --- Data root ---------------------------------------------------------------------------------


def test_root_from_environment(smd_root, monkeypatch):
  monkeypatch.setenv(data.DATA_ROOT_ENV, str(smd_root.parent))
  assert _load_smd("", "machine-1-1", cache_dir=smd_root.parent / "c").entities[0].name == (
      "machine-1-1")


@pytest.mark.parametrize("dataset", ["smd", "smap", "msl"])
def test_missing_root_says_how_to_point_at_the_data(dataset, monkeypatch, tmp_path):
  monkeypatch.delenv(data.DATA_ROOT_ENV, raising=False)
  folder = data.FOLDERS[dataset]
  _assert_refused(lambda: data.load(_config(dataset, "")), f"--config.data.root=/path/to/{folder}",
                  f"export {data.DATA_ROOT_ENV}=")
  monkeypatch.setenv(data.DATA_ROOT_ENV, str(tmp_path))
  _assert_refused(lambda: data.load(_config(dataset, "")), str(tmp_path / folder),
                  "--config.data.root=")
  _assert_refused(lambda: data.load(_config(dataset, tmp_path / "nowhere")), "nowhere",
                  "--config.data.root=")


def test_unknown_dataset_lists_valid_ones():
  _assert_refused(lambda: data.load(_config("yahoo", "")), "yahoo",
                  "synthetic, smd, asd, smap, msl, csv")


# --- Cache -------------------------------------------------------------------------------------


def _forbid_parsing(monkeypatch):
  def fail(path):
    raise AssertionError(f"re-parsed {path}")
  monkeypatch.setattr(smd, "read_matrix", fail)


def test_cache_hit_does_not_reparse(smd_root, monkeypatch):
  first = _load_smd(smd_root).entities[0]
  _forbid_parsing(monkeypatch)
  second = _load_smd(smd_root).entities[0]
  np.testing.assert_array_equal(first.train, second.train)
  np.testing.assert_array_equal(first.labels, second.labels)
  assert list((smd_root.parent / "cache").glob("*.tmp")) == []


def test_cache_is_invalidated_when_the_source_changes(smd_root):
  _load_smd(smd_root)
  path = smd_root / "train" / "machine-1-1.txt"
  _write_rows(path, np.full((40, 3), 0.25))
  status = path.stat()
  os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns + 10**9))
  assert (_load_smd(smd_root).entities[0].train == 0.25).all()


def test_cache_entry_records_the_source(tmp_path):
  source = tmp_path / "a.txt"
  source.write_text("1,2\n")
  calls = []

  def parse(path):
    calls.append(path)
    return {"values": np.ones(2)}

  for _ in range(2):
    cache.cached(source, parse, directory=tmp_path / "c")
  assert len(calls) == 1
  entry = cache.entry_path(tmp_path / "c", source.resolve())
  with np.load(entry, allow_pickle=False) as stored:
    assert str(stored["_source"]) == str(source.resolve())
    assert stored["_fingerprint"][0] == source.stat().st_size
  entry.write_bytes(b"not a zip")
  cache.cached(source, parse, directory=tmp_path / "c")
  assert len(calls) == 2


def test_unwritable_cache_warns_and_still_loads(smd_root):
  blocker = smd_root.parent / "a-file"
  blocker.write_text("")
  with pytest.warns(RuntimeWarning, match="cache_dir"):
    dataset = _load_smd(smd_root, cache_dir=blocker / "cache")
  assert dataset.entities[0].train.shape == (40, 3)


def test_cache_dir_defaults(monkeypatch, tmp_path):
  monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path))
  assert cache.resolve_dir("") == tmp_path
  assert cache.resolve_dir("/x") == Path("/x")
  monkeypatch.delenv(cache.CACHE_ENV)
  assert cache.resolve_dir("") == Path.home() / ".cache" / "tsad_jax"


# --- SMAP / MSL --------------------------------------------------------------------------------

_SMAP_ROWS = [  # chan_id, spacecraft, sequences, test length
    ("A-1", "SMAP", [[2, 4]], 12),
    ("D-1", "SMAP", [[1, 1]], 10),
    ("B-1", "SMAP", [[0, 1], [8, 9]], 10),
    ("D-1", "SMAP", [[5, 6]], 10),
    ("M-1", "MSL", [[3, 5]], 9),
]


def _telemanom(root, rows=_SMAP_ROWS):
  widths = {"SMAP": 3, "MSL": 5}
  lines = ["chan_id,spacecraft,anomaly_sequences,class,num_values"]
  for i, (name, craft, sequences, length) in enumerate(rows):
    lines.append(f'{name},{craft},"{json.dumps(sequences)}",[point],{length}')
    for part, rows_ in (("train", 7 + i), ("test", length)):
      (root / part).mkdir(parents=True, exist_ok=True)
      np.save(root / part / f"{name}.npy", np.full((rows_, widths[craft]), float(i)))
  np.save(root / "test" / "X-1.npy", np.zeros((4, 3)))
  np.save(root / "train" / "X-1.npy", np.zeros((4, 3)))
  (root / smap_msl.LABELS_FILE).write_text("\n".join(lines) + "\n")


@pytest.fixture(name="smap_root")
def _smap_root(tmp_path):
  root = tmp_path / "SMAP_MSL"
  _telemanom(root)
  return root


def _load_smap(root, entity="all", dataset="smap"):
  return data.load(_config(dataset, root, entity))


def test_smap_all_concatenates_in_csv_order(smap_root):
  with pytest.warns(UserWarning, match="D-1 more than once"):
    dataset = _load_smap(smap_root)
  entity, = dataset.entities
  assert entity.name == "SMAP" and dataset.num_features == 3
  assert entity.train.shape == (7 + 9, 3) and entity.test.shape == (12 + 10, 3)
  np.testing.assert_array_equal(entity.test[:, 0], [0] * 12 + [2] * 10)
  assert entity.segments == (Segment(2, 4), Segment(12, 13), Segment(20, 21))
  assert entity.labels.sum() == 3 + 2 + 2
  assert entity.train_parts == (7, 9) and entity.parts == (7, 9) and entity.test_parts == (12, 10)


def test_every_part_of_a_concatenated_series_holds_out_its_own_tail():
  """A whole spacecraft: each channel's last val_fraction is validation; no training window
  reaches into any channel's tail."""
  data = ml_collections.ConfigDict({"window": 4, "val_fraction": 0.25, "train_stride": 1})
  fit, val = fit_and_val_starts([(40, 20), (12,)], data)
  held_out = windows.held_out_rows((40, 20, 12), window=4, val_fraction=0.25)
  np.testing.assert_array_equal(held_out, np.r_[30:40, 55:60, 68:72])
  covered = {int(s) + k for s in fit for k in range(4)}
  assert not covered & set(held_out.tolist())
  np.testing.assert_array_equal(val, np.r_[30:37, 55:57, 68:69])


def test_smap_channels_by_name(smap_root):
  dataset = _load_smap(smap_root, "B-1,A-1")
  assert [e.name for e in dataset.entities] == ["B-1", "A-1"]
  assert dataset.entities[0].segments == (Segment(0, 1), Segment(8, 9))
  with pytest.warns(UserWarning, match="union"):
    repeated = _load_smap(smap_root, "D-1").entities[0]
  assert repeated.segments == (Segment(1, 1), Segment(5, 6))


def test_msl_picks_its_spacecraft(smap_root):
  dataset = _load_smap(smap_root, "all", "msl")
  assert dataset.entities[0].name == "MSL" and dataset.num_features == 5
  assert dataset.feature_names[:2] == ("value", "command_1")


def test_smap_refuses_unknown_channels(smap_root):
  _assert_refused(lambda: _load_smap(smap_root, "Z-9"), "Z-9", "A-1, D-1, B-1",
                  "--config.data.entity")
  _assert_refused(lambda: _load_smap(smap_root, "M-1"), "M-1 is an MSL channel",
                  "--config.data.dataset=msl")
  _assert_refused(lambda: _load_smap(smap_root, "X-1"), "X-1 has data files but no row")


def test_smap_refuses_missing_file(smap_root):
  os.remove(smap_root / "test" / "B-1.npy")
  _assert_refused(lambda: _load_smap(smap_root, "B-1"), "B-1.npy", "A-1", "Check data.root")
  os.remove(smap_root / smap_msl.LABELS_FILE)
  _assert_refused(lambda: _load_smap(smap_root), smap_msl.LABELS_FILE, "SMAP_MSL folder")


def test_smap_refuses_num_values_mismatch(smap_root):
  np.save(smap_root / "test" / "A-1.npy", np.zeros((11, 3)))
  _assert_refused(lambda: _load_smap(smap_root, "A-1"), smap_msl.LABELS_FILE, "num_values=12",
                  "A-1.npy has 11 rows", "Fix num_values")


def test_smap_refuses_non_finite(smap_root):
  values = np.zeros((12, 3))
  values[[3, 5], 1] = np.nan
  np.save(smap_root / "test" / "A-1.npy", values)
  _assert_refused(lambda: _load_smap(smap_root, "A-1"), "A-1.npy", "2 NaN/inf", "rows 3, 5",
                  "Impute")


def test_smap_refuses_wrong_column_count(smap_root):
  np.save(smap_root / "train" / "A-1.npy", np.zeros((7, 4)))
  _assert_refused(lambda: _load_smap(smap_root, "A-1"), "A-1.npy", "4 columns", "3")
  np.save(smap_root / "train" / "A-1.npy", np.zeros(7))
  _assert_refused(lambda: _load_smap(smap_root, "A-1"), "A-1.npy", "2-D")


def test_smap_refuses_empty_and_non_numeric_files(smap_root):
  np.save(smap_root / "train" / "A-1.npy", np.zeros((0, 3)))
  _assert_refused(lambda: _load_smap(smap_root, "A-1"), "A-1.npy", "empty")
  np.save(smap_root / "train" / "A-1.npy", np.array([["a", "b", "c"]]))
  _assert_refused(lambda: _load_smap(smap_root, "A-1"), "A-1.npy", "float array")


@pytest.mark.parametrize("sequences", ['"[[2, 40]]"', '"__import__(\'os\').getcwd()"',
                                       '"[[5, 2]]"'])
def test_smap_refuses_bad_anomaly_sequences(smap_root, sequences):
  path = smap_root / smap_msl.LABELS_FILE
  lines = path.read_text().splitlines()
  lines[1] = f"A-1,SMAP,{sequences},[point],12"
  path.write_text("\n".join(lines) + "\n")
  _assert_refused(lambda: _load_smap(smap_root, "A-1"), smap_msl.LABELS_FILE, "line 2")


# --- CSV ---------------------------------------------------------------------------------------


def _write_csv(path, header, rows):
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(",".join(header) + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))


@pytest.fixture(name="csv_root")
def _csv_root(tmp_path):
  root = tmp_path / "csvdata"
  rng = np.random.default_rng(0)
  train = [(f"2024-01-01 00:{i:02d}", *np.round(rng.random(3), 3), 0) for i in range(30)]
  test = [(f"2024-01-02 00:{i:02d}", int(i in (4, 5)), *np.round(rng.random(3), 3))
          for i in range(20)]
  _write_csv(root / "train.csv", ["time", "cpu", "mem", "net", "label"], train)
  _write_csv(root / "test.csv", ["time", "label", "net", "cpu", "mem"], test)
  return root


def _csv_config(root, **overrides):
  config = _config("csv", root, cache_dir=root.parent / "cache")
  config.csv.train_file, config.csv.test_file = "train.csv", "test.csv"
  config.csv.timestamp_column, config.csv.label_column = "time", "label"
  for name, value in overrides.items():
    setattr(config.csv, name, value)
  return config


def test_csv_loads_and_aligns_columns(csv_root):
  dataset = data.load(_csv_config(csv_root))
  entity, = dataset.entities
  assert dataset.feature_names == ("cpu", "mem", "net")
  assert entity.name == "test" and entity.train.shape == (30, 3) and entity.test.shape == (20, 3)
  assert entity.segments == (Segment(4, 5),)
  raw = np.genfromtxt(csv_root / "test.csv", delimiter=",", skip_header=1)
  np.testing.assert_allclose(entity.test[:, 0], raw[:, 3], rtol=1e-6)


def test_csv_named_feature_columns(csv_root):
  dataset = data.load(_csv_config(csv_root, feature_columns="net, cpu"))
  assert dataset.feature_names == ("net", "cpu")


def test_csv_cache_hit_and_invalidation(csv_root, monkeypatch):
  config = _csv_config(csv_root)
  data.load(config)
  real = csv_files.read_table
  monkeypatch.setattr(csv_files, "read_table", lambda *a, **k: pytest.fail("re-parsed"))
  data.load(config)
  path = csv_root / "train.csv"
  path.write_text(path.read_text().replace("0.", "1.", 1))
  os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
  calls = []
  monkeypatch.setattr(csv_files, "read_table", lambda *a, **k: calls.append(1) or real(*a, **k))
  data.load(config)
  assert calls == [1]


def _edit_line(path, number, text):
  lines = path.read_text().splitlines()
  lines[number - 1] = text
  path.write_text("\n".join(lines) + "\n")


def test_csv_refuses_unsorted_timestamps(csv_root):
  _edit_line(csv_root / "train.csv", 5, "2023-12-31 00:00,0.1,0.2,0.3,0")
  _assert_refused(lambda: data.load(_csv_config(csv_root)), "train.csv", "line 5",
                  "not sorted by 'time'", "Sort the file")


def test_csv_refuses_ragged_row(csv_root):
  _edit_line(csv_root / "test.csv", 3, "2024-01-02 00:01,0,0.1,0.2")
  _assert_refused(lambda: data.load(_csv_config(csv_root)), "test.csv", "line 3", "4 columns",
                  "header has 5")


def test_csv_refuses_non_numeric(csv_root):
  _edit_line(csv_root / "test.csv", 4, "2024-01-02 00:02,0,0.1,high,0.2")
  _assert_refused(lambda: data.load(_csv_config(csv_root)), "test.csv", "line 4",
                  "column 'cpu'", "'high'", "fix that line")


def test_csv_refuses_non_finite(csv_root):
  _edit_line(csv_root / "train.csv", 6, "2024-01-01 00:04,nan,0.2,inf,0")
  _assert_refused(lambda: data.load(_csv_config(csv_root)), "train.csv", "2 NaN/inf", "lines 6",
                  "--config.data.missing=ffill")


@pytest.mark.parametrize("missing", ["ffill", "interpolate"])
def test_csv_gaps_are_filled_as_data_missing_says(csv_root, missing):
  path = csv_root / "train.csv"
  rows = path.read_text().splitlines()
  before, after = rows[4].split(","), rows[6].split(",")
  _edit_line(path, 6, f"{rows[5].split(',')[0]},,0.5,nan,0")  # cpu empty, net nan
  config = _csv_config(csv_root)
  config.missing = missing
  train = data.load(config).entities[0].train
  cpu, net = float(before[1]), float(before[3])
  if missing == "interpolate":
    cpu, net = (cpu + float(after[1])) / 2, (net + float(after[3])) / 2
  np.testing.assert_allclose(train[4, [0, 2]], [cpu, net], rtol=1e-6)
  assert train[4, 1] == np.float32(0.5)


def test_csv_refuses_bad_labels(csv_root):
  _edit_line(csv_root / "test.csv", 2, "2024-01-02 00:00,3,0.1,0.2,0.3")
  _assert_refused(lambda: data.load(_csv_config(csv_root)), "test.csv", "0 or 1", "3")


def test_csv_test_file_without_its_label_column_is_unlabeled(csv_root):
  path = csv_root / "test.csv"
  rows = [line.split(",") for line in path.read_text().splitlines()]
  path.write_text("".join(",".join(r[:1] + r[2:]) + "\n" for r in rows))  # drops "label"
  entity, = data.load(_csv_config(csv_root)).entities
  assert entity.labels is None and entity.segments == ()
  assert entity.test.shape == (20, 3)


def test_csv_refuses_feature_mismatch(csv_root):
  path = csv_root / "test.csv"
  path.write_text(path.read_text().replace("mem", "disk", 1))
  _assert_refused(lambda: data.load(_csv_config(csv_root)), "only in", "train.csv", "mem",
                  "test.csv", "disk", "feature_columns")
  _assert_refused(lambda: data.load(_csv_config(csv_root, feature_columns="cpu,mem")),
                  "test.csv", "lacks the feature columns mem")


def test_csv_refuses_missing_file(csv_root):
  _assert_refused(lambda: data.load(_csv_config(csv_root, test_file="nope.csv")), "nope.csv",
                  "--config.data.csv.test_file", "test.csv, train.csv")
  _assert_refused(lambda: data.load(_csv_config(csv_root, train_file="")),
                  "--config.data.csv.train_file")


def test_csv_refuses_empty_file(csv_root):
  (csv_root / "train.csv").write_text("time,cpu,mem,net,label\n")
  _assert_refused(lambda: data.load(_csv_config(csv_root)), "train.csv", "no rows")


# --- Shared checks -----------------------------------------------------------------------------


def test_series_shorter_than_the_window_names_the_file(smd_root):
  config = _config("smd", smd_root, "machine-1-1", smd_root.parent / "cache")
  config.window = 41  # train has 40 rows
  with pytest.raises(DataError, match=r"train.machine-1-1\.txt.*--config\.data\.window"):
    prepare(data.load(config), config)


def test_check_length_names_the_file():
  with pytest.raises(DataError, match=r"x\.txt.*--config\.data\.window"):
    checks.check_length(np.zeros((5, 2)), 10, what="test series", path="x.txt")
  checks.check_length(np.zeros((10, 2)), 10, what="test series", path="x.txt")


# --- Real data ---------------------------------------------------------------------------------


def _real(dataset, entity, tmp_path):
  """Loads through $TSAD_JAX_DATA_ROOT (the `data_root` fixture skips when it is unset)."""
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    return data.load(_config(dataset, "", entity, tmp_path / "cache"))


def test_real_smd_machine_1_6(data_root, tmp_path):
  dataset = _real("smd", "machine-1-6", tmp_path)
  entity, = dataset.entities
  assert entity.train.shape == (23688, 38) and entity.test.shape == (23689, 38)
  assert entity.labels.shape == (23689,) and 0 < entity.labels.mean() < 0.5
  assert len(entity.segments) == 30
  assert all(segment.dims and max(segment.dims) < 38 for segment in entity.segments)
  assert entity.segments[0] == Segment(246, 251, entity.segments[0].dims)
  assert np.array_equal(_real("smd", "machine-1-6", tmp_path).entities[0].test, entity.test)


def test_real_smap_all_is_the_channels_concatenated(data_root, tmp_path):
  root = data_root / smap_msl.FOLDER
  rows = [r for r in smap_msl.read_rows(root / smap_msl.LABELS_FILE) if r.spacecraft == "SMAP"]
  names = [n for n in dict.fromkeys(r.chan_id for r in rows)
           if sum(r.chan_id == n for r in rows) == 1]
  entity, = _real("smap", "all", tmp_path).entities
  train_rows = sum(len(np.load(root / "train" / f"{n}.npy")) for n in names)
  test_rows = sum(len(np.load(root / "test" / f"{n}.npy")) for n in names)
  assert entity.train.shape == (train_rows, 25) and entity.test.shape == (test_rows, 25)
  assert (len(entity.train), len(entity.test)) == (135183, 427617)  # OmniAnomaly's SMAP.
  assert len(entity.labels) == test_rows


def test_real_msl_all_and_one_channel(data_root, tmp_path):
  entity, = _real("msl", "all", tmp_path).entities
  assert entity.train.shape == (58317, 55) and entity.test.shape == (73729, 55)
  channel, = _real("msl", "M-1", tmp_path).entities
  assert channel.test.shape == (2277, 55) and channel.segments == (Segment(1110, 2250),)


def test_real_smd_through_the_csv_loader(data_root, tmp_path):
  source = data_root / smd.FOLDER
  expected = smd.load_machine(source, "machine-1-6")
  names = [f"m{i}" for i in range(38)]
  root = tmp_path / "csv"
  _write_csv(root / "train.csv", names, np.loadtxt(source / "train" / "machine-1-6.txt",
                                                   delimiter=",", dtype=str))
  test = np.loadtxt(source / "test" / "machine-1-6.txt", delimiter=",", dtype=str)
  labels = np.loadtxt(source / "test_label" / "machine-1-6.txt", dtype=str)
  _write_csv(root / "test.csv", names + ["label"], np.column_stack([test, labels]))
  config = _csv_config(root, timestamp_column="")
  entity, = data.load(config).entities
  np.testing.assert_array_equal(entity.test, expected.test)
  np.testing.assert_array_equal(entity.labels, expected.labels)
