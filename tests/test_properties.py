"""Property tests (hypothesis): windows, metrics, thresholds, gap filling and the CSV and SMD
loaders on random shapes and values, NaN and inf, constant columns, one-row and empty files,
unsorted timestamps."""

import csv
import dataclasses
import pathlib
import tempfile

from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import numpy as np
import pytest

from configs.common import data_config
from tsad_jax import metrics
from tsad_jax import thresholds
from tsad_jax.data import DataError
from tsad_jax.data import csv_files
from tsad_jax.data import load
from tsad_jax.data import rows
from tsad_jax.data import windows

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(lengths=st.lists(st.integers(1, 60), min_size=1, max_size=4), window=st.integers(1, 20),
       stride=st.integers(1, 7))
def test_windows_cover_every_row_and_never_cross_segments(lengths, window, stride):
  if min(lengths) < window:
    with pytest.raises(DataError, match="shorter than the window"):
      windows.window_starts(lengths, window=window, stride=stride)
    return
  starts = windows.window_starts(lengths, window=window, stride=stride)
  bounds = np.cumsum([0, *lengths])
  segment = np.searchsorted(bounds, starts, side="right") - 1
  assert (starts + window <= bounds[segment + 1]).all()  # inside its own segment
  covered = np.zeros(bounds[-1], bool)
  for start in starts:
    covered[start:start + window] = True
  assert (np.diff(starts) > 0).all() and covered[bounds[1:] - 1].all()  # every segment's end
  assert covered.all() or stride > window


@SETTINGS
@given(length=st.integers(4, 400), window=st.integers(1, 20),
       fraction=st.floats(0.0, 0.9, allow_nan=False))
def test_train_and_validation_split_in_time_and_keep_a_window_each(length, window, fraction):
  if length < 2 * window and fraction:
    return  # refused elsewhere: too short to split
  try:
    fit, val = windows.split_train_val(length, window=window, val_fraction=fraction)
  except (ValueError, DataError):
    return
  assert fit + val == length
  assert val == 0 if round(length * fraction) == 0 else (fit >= window and val >= window)


# Scores on a grid of 0.01, so that an affine rescaling keeps their order exactly.
labels_and_scores = st.integers(2, 120).flatmap(lambda n: st.tuples(
    st.lists(st.integers(0, 1), min_size=n, max_size=n),
    st.lists(st.integers(-10_000, 10_000).map(lambda v: v / 100), min_size=n, max_size=n)))
FEW = settings(SETTINGS, max_examples=15)  # VUS sweeps every threshold: seconds an example


@FEW
@given(pair=labels_and_scores)
def test_threshold_free_metrics_lie_in_0_1_and_ignore_monotone_rescaling(pair):
  labels, scores = np.array(pair[0], np.uint8), np.array(pair[1])
  figures = metrics.threshold_free(labels, scores, sliding_window=5)
  if labels.all() or not labels.any():
    return  # undefined without both classes: NaN by design
  for key in ("AUC-PR", "AUC-ROC", "VUS-PR", "VUS-ROC"):
    assert 0.0 <= figures[key] <= 1.0 + 1e-9, key
  rescaled = metrics.threshold_free(labels, 3.0 * scores + 7.0, sliding_window=5)
  for key in ("AUC-PR", "AUC-ROC"):
    assert rescaled[key] == pytest.approx(figures[key], abs=1e-9)


@FEW
@given(pair=labels_and_scores)
def test_thresholded_f1_and_the_oracle_bound_it(pair):
  labels, scores = np.array(pair[0], np.uint8), np.array(pair[1])
  if not labels.any():
    return
  threshold = float(np.median(scores))
  at = metrics.at_threshold(labels, (scores > threshold).astype(np.uint8))
  assert 0.0 <= at["precision"] <= 1.0 and 0.0 <= at["recall"] <= 1.0
  assert 0.0 <= at["F1"] <= 1.0 and at["PA-F1"] >= at["F1"] - 1e-12
  best = metrics.best_f1_threshold(labels, scores)[0]
  oracle = metrics.at_threshold(labels, (scores > best).astype(np.uint8))
  assert oracle["F1"] >= at["F1"] - 1e-9


@SETTINGS
@given(values=st.lists(st.floats(0.0, 100.0), min_size=120, max_size=400),
       cuts=st.lists(st.integers(1, 399), max_size=6), relearn=st.sampled_from([0, 1, 3]))
def test_streaming_thresholds_follow_any_split_as_the_whole(values, cuts, relearn):
  scores = np.array(values)
  calib, test = scores[:100], scores[100:]
  for method in ("spot", "dspot", "pot", "percentile"):
    options = {"pot_q": 0.05, "pot_level": 0.8, "dspot_depth": 5, "dspot_relearn": relearn,
               "anomaly_ratio": 5.0}
    if np.ptp(calib) == 0:
      return  # a flat calibration tail has no tail to fit
    try:
      whole = thresholds.compute(method, calib_scores=calib, test_scores=test, options=options)
    except ValueError:
      return
    follower, parts = thresholds.start(method, calib_scores=calib, options=options), []
    for chunk in np.split(test, sorted({c for c in cuts if c < len(test)})):
      if len(chunk):
        follower, levels = thresholds.follow(follower, chunk)
        parts.append(levels)
    np.testing.assert_array_equal(np.concatenate(parts), np.broadcast_to(whole, test.shape))


def _columns(width: int) -> rows.Columns:
  return rows.Columns("in.csv", tuple(f"c{j}" for j in range(width)), tuple(range(width)), None)


gappy = st.integers(1, 4).flatmap(lambda d: st.lists(
    st.lists(st.one_of(st.floats(-50, 50), st.just(float("nan"))), min_size=d, max_size=d),
    min_size=1, max_size=40))


@SETTINGS
@given(table=gappy, cuts=st.lists(st.integers(1, 39), max_size=5),
       missing=st.sampled_from(["ffill", "interpolate"]))
def test_gaps_are_filled_the_same_whatever_the_chunks(table, cuts, missing):
  values = np.array(table, np.float64)
  columns = _columns(values.shape[1])
  parsed = rows.Parsed(values, [str(i) for i in range(len(values))], np.arange(len(values)))
  try:
    _, whole = rows.fill_gaps(rows.start_gaps(values.shape[1]), parsed, missing=missing,
                              columns=columns, final=True)
  except DataError as error:
    assert "no value at all" in str(error)
    assert np.isnan(values).all(axis=0).any()
    return
  assert np.isfinite(whole.values).all() and len(whole.values) == len(values)
  known = ~np.isnan(values)
  np.testing.assert_array_equal(whole.values[known], values[known])
  state, pieces = rows.start_gaps(values.shape[1]), []
  bounds = [0, *sorted({c for c in cuts if c < len(values)}), len(values)]
  for begin, end in zip(bounds[:-1], bounds[1:], strict=True):
    part = rows.Parsed(values[begin:end], parsed.stamps[begin:end], parsed.lines[begin:end])
    state, done = rows.fill_gaps(state, part, missing=missing, columns=columns,
                                 final=end == len(values))
    pieces.append(done.values)
  np.testing.assert_allclose(np.concatenate(pieces), whole.values, rtol=1e-12, atol=1e-12)


number_cells = st.one_of(
    st.floats(allow_nan=False).map(repr), st.floats(-1e3, 1e3).map(lambda v: f" {v:.6e} "),
    st.integers(-10**6, 10**6).map(str), st.sampled_from(["", "nan", "inf", "-0", "1_000", "x"]))


@SETTINGS
@given(width=st.integers(1, 4), data=st.data())
def test_a_block_of_lines_parses_as_cell_by_cell_reading_does(width, data):
  # Plain blocks take the fast reader, quoted ones the cell-by-cell one: same numbers,
  # stamps and lines, or the same refusal.
  stamp_column = data.draw(st.integers(0, width))  # == width: no timestamp column
  header = tuple(f"c{j}" for j in range(width + 1))
  columns = rows.Columns("in.csv", header, tuple(j for j in range(width + 1) if j != stamp_column)
                         if stamp_column < width else tuple(range(width)),
                         stamp_column if stamp_column < width else None)
  if columns.timestamp is None:
    columns = dataclasses.replace(columns, header=header[:width])
  table = data.draw(st.lists(st.lists(number_cells, min_size=len(columns.header),
                                      max_size=len(columns.header)), max_size=12))
  plain = [(i + 2, ",".join(row)) for i, row in enumerate(table)]
  quoted = [(number, ",".join(f'"{cell}"' for cell in text.split(","))) for number, text in plain]

  def read(lines):
    try:
      return rows.parse_lines(lines, columns)
    except DataError as error:
      return str(error)

  fast, slow = read(plain), read(quoted)
  numbers_only = all(row[j].strip() not in ("nan", "1_000", "x") for row in table
                     for j in columns.features)
  if table and numbers_only and all(any(row[j].strip() for j in columns.features)
                                    for row in table):
    assert rows._parse_plain(plain, columns) is not None  # the fast reader took it
  if isinstance(slow, str):
    assert fast == slow
    return
  np.testing.assert_array_equal(fast.values, slow.values)
  assert fast.stamps == slow.stamps
  np.testing.assert_array_equal(fast.lines, slow.lines)


def _write(path: pathlib.Path, header: list[str], body: list[list[str]]) -> None:
  with open(path, "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(header)
    writer.writerows(body)


cells = st.one_of(st.floats(-1e3, 1e3).map(lambda v: f"{v:.4f}"), st.just("nan"),
                  st.just("inf"), st.just(""), st.just("x"))


@SETTINGS
@given(width=st.integers(1, 4), length=st.integers(0, 12), data=st.data(),
       shuffle_time=st.booleans(), constant=st.booleans())
def test_the_csv_loader_loads_or_names_the_problem(width, length, data, shuffle_time, constant):
  body = [[str(t)] + [data.draw(cells) for _ in range(width)] for t in range(length)]
  if constant:
    body = [[r[0]] + ["1.0"] * width for r in body]
  if shuffle_time and length > 1:
    body = body[::-1]
  header = ["time"] + [f"m{j}" for j in range(width)]
  with tempfile.TemporaryDirectory() as folder:
    root = pathlib.Path(folder)
    _write(root / "train.csv", header, body)
    _write(root / "test.csv", header, body)
    config = data_config().csv
    config.train_file, config.test_file, config.timestamp_column = "train.csv", "test.csv", "time"
    try:
      dataset = csv_files.load(str(root), config)
    except DataError as error:
      assert "train.csv" in str(error) or "test.csv" in str(error)
      return
  entity, = dataset.entities
  assert entity.train.shape == (length, width) and np.isfinite(entity.train).all()
  assert entity.labels is None  # no label column: unlabeled
  assert length > 0 and not (shuffle_time and length > 1)


@SETTINGS
@given(train=st.lists(st.lists(cells, min_size=2, max_size=2), max_size=8),
       test_length=st.integers(0, 8))
def test_the_smd_loader_loads_or_names_the_file(train, test_length):
  with tempfile.TemporaryDirectory() as folder:
    root = pathlib.Path(folder)
    for part, body in (("train", train), ("test", [["0.5", "1.5"]] * test_length),
                       ("test_label", [["0"]] * test_length)):
      (root / part).mkdir()
      (root / part / "m-1.txt").write_text("".join(",".join(r) + "\n" for r in body))
    config = data_config()
    config.dataset, config.root, config.entity = "smd", str(root), "m-1"
    try:
      entity, = load(config).entities
    except DataError as error:
      assert "m-1.txt" in str(error)
      return
  assert entity.train.shape == (len(train), 2) and np.isfinite(entity.train).all()
  assert entity.test.shape == (test_length, 2) and test_length > 0 and len(train) > 0
