"""A trained run folder -> a `stream.Deployment` for one of its entities.

Everything alarms depend on comes from the run's training series only: the
normaliser is refitted on it (as training fitted it), the training series is
scored the way new rows are (`stream.score_rows`), and the feature scaling and
the threshold are fitted on its held-out calibration tail. That costs one pass
over the training series, so the result is kept in
`<run>/detect/calibration-<entity>.pkl` and reused while the run's config and
checkpoints (and the scoring batch) are unchanged. Nothing else in the run folder is written.
"""

import dataclasses
import hashlib
import json
import pathlib
import pickle

import jax
import ml_collections
import numpy as np

from tsad_jax import distributed
from tsad_jax import models
from tsad_jax import runs
from tsad_jax import stream
from tsad_jax import train
from tsad_jax.data import DataError
from tsad_jax.data import load as load_data
from tsad_jax.data import normalize
from tsad_jax.data.types import Entity

_CACHE_VERSION = 2


def load(run_dir: str | pathlib.Path, *, entity: str = "",
         defaults: ml_collections.ConfigDict | None = None, batch: int = 64) -> stream.Deployment:
  """The run's model, made ready to score new rows of `entity` (default: its only one).

  `defaults` (configs/common.py's config for the run's model) fills in fields
  newer than the run. Raises FileNotFoundError for a folder that is not a run,
  DataError when the run's training data cannot be found or `entity` is not
  one of its entities.
  """
  run_dir = pathlib.Path(run_dir)
  config = runs.load_config(run_dir)
  if defaults is not None:
    config = runs.add_missing_fields(config, defaults)
  dataset = load_data(config.data)
  chosen = _entity(dataset.entities, entity, run_dir)
  model_lib = models.get(config.model.name)
  model = model_lib.build(config.model, num_features=dataset.num_features,
                          window=config.data.window)
  params = train.load_params(run_dir)
  train.check_params_fit(params, model, window=config.data.window,
                         num_features=dataset.num_features, source=str(run_dir))
  cache = run_dir / "detect" / f"calibration-{chosen.name}.pkl"
  key = _cache_key(run_dir, config, batch)
  calibrated = _read_cache(cache, key)
  dep = build(config, tuple(dataset.feature_names), chosen, model, params, batch=batch,
              calibrated=calibrated)
  if calibrated is None:
    cache.parent.mkdir(exist_ok=True)
    saved = (dep.reference, dep.scaling, dep.threshold)
    runs.replace_atomically(cache, pickle.dumps({"key": key, "calibrated": saved}))
  return dep


def build(config: ml_collections.ConfigDict, feature_names: tuple[str, ...], entity: Entity,
          model, params, *, batch: int = 64, calibrated=None) -> stream.Deployment:
  """A Deployment of `model` with `params` for `entity`, calibrated on its training series
  (or with `calibrated`, the (reference, scaling, threshold) of an earlier call).

  An entity of several parts (a whole spacecraft's channels) is deployed with scaling
  statistics pooled over every part's tail: a new series is not known to be one of them,
  so its scores are not scaled per part as the run's own evaluation scales them."""
  model_lib = models.get(config.model.name)
  normalizer = normalize.fit(entity.train, config.data.normalize, clip=config.data.minmax_clip)
  dep = stream.Deployment(config, feature_names, model_lib, model, params, normalizer, None,
                          None, None)
  mesh = stream.scoring_mesh(dep, batch)  # laid out once, as each scoring call needs them
  dep = dataclasses.replace(dep, params=distributed.put(params, distributed.replicated(mesh)))
  if calibrated is None:
    raw = np.concatenate([_score_series(dep, part, batch=batch)
                          for part in _split(entity.train, entity.parts)])
    calibrated = stream.calibrate(config, raw, entity.parts, model_lib.HOOKS)
  reference, scaling, threshold = calibrated
  return dataclasses.replace(dep, reference=reference, scaling=scaling, threshold=threshold)


def _entity(entities: tuple[Entity, ...], name: str, run_dir: pathlib.Path) -> Entity:
  names = [e.name for e in entities]
  if not name and len(entities) == 1:
    return entities[0]
  if name in names:
    return entities[names.index(name)]
  what = f"has no entity {name!r}" if name else "was trained on several entities"
  raise DataError(f"Run {run_dir} {what}: choose one of {', '.join(names)} with --entity.")


def _split(series: np.ndarray, parts: tuple[int, ...]) -> list[np.ndarray]:
  return np.split(series, np.cumsum(parts)[:-1])


def _score_series(dep: stream.Deployment, series: np.ndarray, *, batch: int) -> np.ndarray:
  """Raw scores of a whole series, scored as a stream from its first row."""
  state = stream.start_scoring(series.shape[1])
  _, raw = stream.score_rows(dep, state, series, batch=batch)
  return raw


def _cache_key(run_dir: pathlib.Path, config: ml_collections.ConfigDict, batch: int) -> str:
  """Changes with the config, the run's checkpoints, the batch and the devices it is split
  over (XLA's float rounding may differ between batch sizes) and this module's way of
  calibrating."""
  checkpoints = sorted(p.name for p in (run_dir / "checkpoints").glob("*"))
  devices = [str(d) for d in jax.local_devices()]
  text = json.dumps([_CACHE_VERSION, json.loads(config.to_json()), checkpoints, batch, devices],
                    sort_keys=True)
  return hashlib.sha256(text.encode()).hexdigest()


def _read_cache(path: pathlib.Path, key: str):
  try:
    saved = pickle.loads(path.read_bytes())
  except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ValueError):
    return None
  return saved["calibrated"] if isinstance(saved, dict) and saved.get("key") == key else None
