"""Windows by index, the train/validation split, and window-to-timestep scores."""

import jax
import jax.numpy as jnp
import numpy as np
from numpy.testing import assert_array_equal
import pytest

from tsad_jax.data import windows
from tsad_jax.data.types import DataError


def test_window_starts_cover_each_segment_without_crossing():
  starts = windows.window_starts([10, 7], window=4, stride=3)
  # Segment 1 (0..9): 0, 3, 6 (ends at 9). Segment 2 (10..16): 10, 13 (ends at 16).
  assert_array_equal(starts, [0, 3, 6, 10, 13])
  assert all((s + 4 <= 10) or (s >= 10) for s in starts)


def test_window_starts_add_the_last_window_when_stride_skips_it():
  assert_array_equal(windows.window_starts([9], window=4, stride=3), [0, 3, 5])


def test_short_series_is_refused_with_the_fix():
  with pytest.raises(DataError, match="shorter than the window"):
    windows.window_starts([3], window=4)


def test_take_windows_cuts_by_index_inside_jit():
  series = jnp.arange(20.0).reshape(10, 2)
  cut = jax.jit(windows.take_windows, static_argnums=2)(series, jnp.array([0, 6]), 4)
  assert cut.shape == (2, 4, 2)
  assert_array_equal(cut[1, :, 0], [12.0, 14.0, 16.0, 18.0])


def test_split_is_time_ordered_and_keeps_a_window_in_each_part():
  assert windows.split_train_val(1000, window=10, val_fraction=0.1) == (900, 100)
  assert windows.split_train_val(100, window=30, val_fraction=0.1) == (70, 30)
  assert windows.split_train_val(100, window=30, val_fraction=0.0) == (100, 0)
  with pytest.raises(DataError, match="val_fraction"):
    windows.split_train_val(50, window=30, val_fraction=0.1)


def test_last_rule_alignment():
  window = 3
  # Timesteps 0..5 of one segment: windows end at 2, 3, 4, 5.
  last_point = np.array([[2.0], [3.0], [4.0], [5.0]])
  first_window = np.array([[10.0], [11.0], [12.0]])
  got = windows.timestep_scores_last(last_point, first_window, window=window)
  assert_array_equal(got[:, 0], [10.0, 11.0, 2.0, 3.0, 4.0, 5.0])
  backfilled = windows.timestep_scores_last(last_point, None, window=window)
  assert_array_equal(backfilled[:, 0], [2.0, 2.0, 2.0, 3.0, 4.0, 5.0])
