"""Run folders: `<workdir>/<dataset>/<entity>/<model>/<run_id>/`.

A run folder holds the resolved config (`config.json`), `checkpoints/<step>/`,
per-epoch `metrics.json`, test `scores.npz` and `scores.csv`, `summary.json`
and `plots/`. A new run never reuses an existing folder; naming an existing
run with `config.run_id` resumes it.
"""

import datetime
import functools
import json
import os
import pathlib
import platform

import jax
import ml_collections
import numpy as np
import pandas as pd

from tsad_jax import config_names
from tsad_jax import models

CONFIG_FILE = "config.json"
# Fields a resumed run may change: how long and how verbosely it trains.
RESUMABLE_CHANGES = ("train.max_epochs", "train.progress_bar", "run_id")


def entity_folder(data: ml_collections.ConfigDict) -> str:
  """Folder name of the entities of a run ("a+b" for several)."""
  entity = data.entity or data.dataset
  return "+".join(config_names.comma_list(entity))


def run_parent(workdir: str | pathlib.Path, config: ml_collections.ConfigDict) -> pathlib.Path:
  entity = entity_folder(config.data)
  return pathlib.Path(workdir) / config.data.dataset / entity / config.model.name


def _flat(tree: dict, prefix: str = "") -> dict:
  out = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      out.update(_flat(value, f"{prefix}{key}."))
    else:
      out[f"{prefix}{key}"] = value
  return out


def new_run_id(parents: list[pathlib.Path]) -> str:
  """A timestamp (with a suffix if needed) that names no existing folder in any of `parents`."""
  stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
  run_id, suffix = stamp, 1
  while any((parent / run_id).exists() for parent in parents):
    run_id, suffix = f"{stamp}-{suffix}", suffix + 1
  return run_id


def open_run(workdir: str | pathlib.Path, config: ml_collections.ConfigDict, *,
             new_named: bool = True) -> pathlib.Path:
  """Creates a new run folder, or reopens `config.run_id` to resume it.

  A `config.run_id` that names no run starts one under that name, or, with
  `new_named=False` (launch.train without --new_run), is refused: a mistyped id
  must not silently train from scratch. Resuming refuses a config that differs
  from the saved one in anything but RESUMABLE_CHANGES and scoring-only fields
  (`is_rescoring_field`), since the checkpoints belong to the saved config; the
  saved config takes those changes.
  """
  parent = run_parent(workdir, config)
  if config.run_id:
    run_dir = parent / config.run_id
    if (run_dir / CONFIG_FILE).exists():
      saved = _flat(json.loads((run_dir / CONFIG_FILE).read_text()))
      wanted = _flat(json.loads(config.to_json()))
      changed = sorted(k for k in saved.keys() | wanted.keys()
                       if saved.get(k) != wanted.get(k) and k not in RESUMABLE_CHANGES
                       and not is_rescoring_field(k, config.model.name))
      if changed:
        raise ValueError(
            f"Run {run_dir} was made with a different config ({', '.join(changed)}); resume it "
            "with the same config, or leave config.run_id empty to start a new run.")
      if saved != wanted:
        write_json(run_dir / CONFIG_FILE, json.loads(config.to_json()))
      return run_dir
    if not new_named:
      known = sorted(p.name for p in parent.glob("*") if (p / CONFIG_FILE).exists())
      raise FileNotFoundError(
          f"There is no run {run_dir} to resume (runs there: {', '.join(known) or 'none'}). "
          "Check --config.run_id, or add --new_run to start a new run with that id.")
  else:
    run_dir = parent / new_run_id([parent])
  run_dir.mkdir(parents=True, exist_ok=True)
  with config.unlocked():
    config.run_id = run_dir.name
  write_json(run_dir / CONFIG_FILE, json.loads(config.to_json()))
  return run_dir


def machine() -> str:
  """The CPU model and JAX devices, for summaries and benchmark reports."""
  cpu = platform.processor() or platform.machine()
  try:
    with open("/proc/cpuinfo") as f:
      cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
  except (OSError, StopIteration):
    pass
  devices = jax.devices()
  return (f"{cpu}, {os.cpu_count()} cores, {len(devices)} x {devices[0].platform}, "
          f"jax {jax.__version__}")


def load_config(run_dir: str | pathlib.Path) -> ml_collections.ConfigDict:
  path = pathlib.Path(run_dir) / CONFIG_FILE
  if not path.exists():
    raise FileNotFoundError(
        f"{path} not found: --run must name a run folder made by launch.train "
        "(<workdir>/<dataset>/<entity>/<model>/<run_id>).")
  return ml_collections.ConfigDict(json.loads(path.read_text()))


# Fields added to the library after runs were saved, whose default has since become
# something else than what those runs did: a saved config without one gets this value.
BEHAVIOUR_BEFORE_THE_FIELD = {("threshold", "dspot_relearn"): 0}


def add_missing_fields(config: ml_collections.ConfigDict,
                       defaults: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A copy of a saved run's config with every field of `defaults` it lacks.

  Fields added to the library after a run was saved take their default, which
  keeps the behaviour the run was made with, or, where a later default changed
  that behaviour, their BEHAVIOUR_BEFORE_THE_FIELD value. In the model section only
  scoring-only fields (`is_rescoring_field`) are added, and only when `defaults`
  holds the run's own model (configs.common.defaults): a model's newer
  training fields are the model file's to fill, with the values the run was
  trained with.
  """

  def add(saved: dict, default: dict) -> None:
    for key, value in default.items():
      if key not in saved:
        saved[key] = value
      elif isinstance(value, dict) and isinstance(saved[key], dict):
        add(saved[key], value)

  merged = config.to_dict()
  for (section, field), value in BEHAVIOUR_BEFORE_THE_FIELD.items():
    if section in merged and field not in merged[section]:
      merged[section][field] = value
  default = defaults.to_dict()
  add(merged, {k: v for k, v in default.items() if k != "model"})
  if default.get("model", {}).get("name") == merged.get("model", {}).get("name"):
    add(merged["model"], {k: v for k, v in default["model"].items()
                          if is_rescoring_field(f"model.{k}", default["model"]["name"])})
  return ml_collections.ConfigDict(merged)


# Sections that change how a trained model's scores are combined, thresholded and
# reported, never its parameters; a model's own such fields are its SCORING_FIELDS.
RESCORING_SECTIONS = ("threshold", "eval")


@functools.cache
def _model_scoring_fields(model_name: str) -> tuple[str, ...]:
  # Looked up once per model: callers ask for every field of a flattened config.
  return tuple(models.get(model_name).SCORING_FIELDS)


def rescoring_fields(model_name: str) -> list[str]:
  """What a saved run of `model_name` may be re-scored with other values of."""
  return [f"{section}.*" for section in RESCORING_SECTIONS] + [
      f"model.{name}" for name in _model_scoring_fields(model_name)]


def is_rescoring_field(field: str, model_name: str) -> bool:
  section, _, name = field.partition(".")
  if section in RESCORING_SECTIONS:
    return bool(name)
  return section == "model" and name in _model_scoring_fields(model_name)


def training_fields(config: ml_collections.ConfigDict) -> dict:
  """The flattened config minus scoring-only fields and run_id: what training depends on."""
  return {k: v for k, v in _flat(json.loads(config.to_json())).items()
          if not is_rescoring_field(k, config.model.name) and k != "run_id"}


def rescoring_overrides(saved: ml_collections.ConfigDict,
                        wanted: ml_collections.ConfigDict) -> list[str]:
  """`field=value` overrides turning a saved run's scoring-only fields into `wanted`'s."""
  have = _flat(json.loads(saved.to_json()))
  return [f"{field}={value}" for field, value in sorted(_flat(json.loads(wanted.to_json())).items())
          if is_rescoring_field(field, wanted.model.name) and have.get(field) != value]


def rescoring_config(config: ml_collections.ConfigDict,
                     overrides: list[str]) -> ml_collections.ConfigDict:
  """A copy of a run's config with `field=value` overrides of scoring-only fields.

  Raises ValueError for a malformed override, an unknown field, or one that
  would need retraining (anything `is_rescoring_field` refuses).
  """
  config = ml_collections.ConfigDict(config.to_dict())
  for override in overrides:
    field, sep, text = override.partition("=")
    field = field.strip()
    if not sep or not field:
      raise ValueError(f"--override={override!r}: write field=value, e.g. model.gamma=0.5.")
    if not is_rescoring_field(field, config.model.name):
      raise ValueError(f"--override={override!r}: {field} changes the trained model; only "
                       f"{', '.join(rescoring_fields(config.model.name))} can be changed "
                       "when re-scoring.")
    config_names.set_field(config, field, text.strip(), where=f"--override={override!r}",
                           whose="the run's config")
  return config


def replace_atomically(path: pathlib.Path, data: bytes) -> None:
  """Writes `data` to `path` so that a reader (or a process killed meanwhile) sees the old
  file or the new one, never a part."""
  temporary = path.with_name(f".{path.name}.tmp")
  with open(temporary, "wb") as f:
    f.write(data)
    f.flush()
    os.fsync(f.fileno())
  os.replace(temporary, path)


def write_json(path: pathlib.Path, tree) -> None:
  path.write_text(json.dumps(tree, indent=2, default=_json_default) + "\n")


def _json_default(value):
  if isinstance(value, np.generic):
    return value.item()
  if isinstance(value, np.ndarray):
    return value.tolist()
  raise TypeError(f"not JSON serialisable: {type(value)}")


def write_scores(out_dir: pathlib.Path, entity_names, labels, per_feature, feature_names, *,
                 alarms, thresholds) -> None:
  """Writes test scores as `scores.npz` (arrays) and `scores.csv` (one row per timestep):
  the total and per-feature scores, the labels (where given), the alarm method's
  threshold at each row and the alarms (0/1)."""
  arrays = {}
  frames = []
  for name, entity_labels, scores, flags, levels in zip(entity_names, labels, per_feature,
                                                        alarms, thresholds, strict=True):
    arrays[f"{name}/score"] = scores.sum(axis=1)
    arrays[f"{name}/per_feature"] = scores
    arrays[f"{name}/alarm"] = flags
    arrays[f"{name}/threshold"] = levels
    frame = pd.DataFrame(scores, columns=[f"score_{f}" for f in feature_names])
    frame.insert(0, "alarm", flags)
    frame.insert(0, "threshold", levels)
    frame.insert(0, "score", scores.sum(axis=1))
    if entity_labels is not None:
      arrays[f"{name}/label"] = entity_labels
      frame.insert(0, "label", entity_labels)
    frame.insert(0, "timestep", np.arange(len(scores)))
    frame.insert(0, "entity", name)
    frames.append(frame)
  np.savez_compressed(out_dir / "scores.npz", **arrays)
  pd.concat(frames).to_csv(out_dir / "scores.csv", index=False, float_format="%.6g")
