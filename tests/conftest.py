"""Shared fixtures: where the real benchmark data is."""

import os
import pathlib

import pytest

DATA_ROOT_ENV = "TSAD_JAX_DATA_ROOT"


@pytest.fixture(scope="session")
def data_root() -> pathlib.Path:
  """The folder holding ServerMachineDataset/ and SMAP_MSL/ ($TSAD_JAX_DATA_ROOT).

  Skips when unset on a developer machine; in CI (CI=true) a missing data
  root fails, so real-data tests can never be skipped there silently.
  """
  root = os.environ.get(DATA_ROOT_ENV, "")
  if root and pathlib.Path(root).is_dir():
    return pathlib.Path(root)
  message = (f"real-data test: set {DATA_ROOT_ENV} to the folder holding ServerMachineDataset/ "
             "and SMAP_MSL/ (.ci/run sets it to ../shared/data)")
  if os.environ.get("CI"):
    pytest.fail(message)
  pytest.skip(message)
