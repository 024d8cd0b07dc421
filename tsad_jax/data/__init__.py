"""Data loading: `load(config.data)` returns the raw `Dataset` the config names."""

import os
from pathlib import Path

import ml_collections

from tsad_jax.data import cache
from tsad_jax.data import checks
from tsad_jax.data import csv_files
from tsad_jax.data import smap_msl
from tsad_jax.data import smd
from tsad_jax.data import synthetic
from tsad_jax.data.types import DataError
from tsad_jax.data.types import Dataset
from tsad_jax.data.types import Entity
from tsad_jax.data.types import Segment

# The folder holding the standard data set folders (`ServerMachineDataset/`, `SMAP_MSL/`);
# used when `data.root` is left empty.
DATA_ROOT_ENV = "TSAD_JAX_DATA_ROOT"
DATASETS = ("synthetic", "smd", "asd", "smap", "msl", "csv")
FOLDERS = {"smd": smd.FOLDER, "asd": smd.ASD_FOLDER, "smap": smap_msl.FOLDER,
           "msl": smap_msl.FOLDER}


def load(data: ml_collections.ConfigDict) -> Dataset:
  """Loads the data set `data` (config.data) names, raw (not normalised)."""
  name = data.dataset.strip().lower()
  if name == "synthetic":
    return synthetic.load(data.synthetic, data.entity)
  if name == "csv":
    return csv_files.load(data.root, data.csv, data.entity,
                          cache_dir=cache.resolve_dir(data.cache_dir),
                          missing=data.get("missing", "error"))
  if name in ("smd", "asd"):
    return smd.load(resolve_root(data), data.entity, cache_dir=cache.resolve_dir(data.cache_dir),
                    dataset=name)
  if name in ("smap", "msl"):
    return smap_msl.load(resolve_root(data), name, data.entity)
  raise DataError(f"Unknown data set {data.dataset!r}; set --config.data.dataset to one of "
                  f"{', '.join(DATASETS)}.")


def fleet_entities(data: ml_collections.ConfigDict) -> list[str]:
  """The entities `data.entities` names ("all", or a comma list), each to get its own model."""
  name = data.dataset.strip().lower()
  if name in ("smd", "asd"):
    root = resolve_root(data)
    return checks.select_entities(data.entities, smd.machines(root), where=str(root / "train"))
  if name in ("smap", "msl"):
    root = resolve_root(data)
    return checks.select_entities(data.entities, smap_msl.channels(root, name),
                                  where=str(root / smap_msl.LABELS_FILE))
  raise DataError(f"config.data.entities: a fleet needs a data set of several entities (smd, "
                  f"asd, smap or msl), not {data.dataset!r}.")


def resolve_root(data: ml_collections.ConfigDict) -> Path:
  """The data set's folder: data.root, else $TSAD_JAX_DATA_ROOT/<its standard folder name>."""
  folder = FOLDERS[data.dataset.strip().lower()]
  how = (f"Point at it with --config.data.root=/path/to/{folder} or "
         f"export {DATA_ROOT_ENV}=/path/to/folder-holding-{folder}.")
  if data.root:
    root = Path(data.root).expanduser()
    if not root.is_dir():
      raise DataError(f"data.root={data.root} is not a folder. {how}")
    return root
  parent = os.environ.get(DATA_ROOT_ENV, "")
  if not parent:
    raise DataError(f"Cannot find the {folder} folder: data.root is empty and ${DATA_ROOT_ENV} "
                    f"is not set. {how}")
  root = Path(parent).expanduser() / folder
  if not root.is_dir():
    raise DataError(f"Cannot find the {folder} folder: {root} (from ${DATA_ROOT_ENV}) does not "
                    f"exist. {how}")
  return root


__all__ = ["DATASETS", "DATA_ROOT_ENV", "DataError", "Dataset", "Entity", "Segment",
           "fleet_entities", "load", "resolve_root"]
