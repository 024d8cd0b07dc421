"""Configs by name, fields by dotted path, and the comma lists fields hold: one reader of each
for the launchers, sweeps, bench and tests."""

import importlib
import pathlib

import ml_collections

CONFIGS = pathlib.Path(__file__).resolve().parent.parent / "configs"


def comma_list(text: str) -> list[str]:
  """The names in a comma-separated field ("pot, tail_p" -> ["pot", "tail_p"]), blanks dropped."""
  return [name.strip() for name in str(text).split(",") if name.strip()]


def load(name: str) -> ml_collections.ConfigDict:
  """The config of `configs/<name>.py`, for "name" or "name:argument" ("sweeps.demo_quick" for
  configs/sweeps/demo_quick.py), with a clear error naming the configs there are."""
  module_name, sep, argument = name.partition(":")
  try:
    module = importlib.import_module(f"configs.{module_name}")
  except ModuleNotFoundError as error:
    if not (error.name or "").startswith("configs."):
      raise
    folder = CONFIGS.joinpath(*module_name.split(".")[:-1])
    known = sorted(p.stem for p in folder.glob("*.py") if p.stem not in ("__init__", "common"))
    raise ValueError(f"{name!r}: no config configs/{module_name.replace('.', '/')}.py; choose "
                     f"from {', '.join(known) or 'the modules in configs/'}.") from None
  return module.get_config(argument) if sep else module.get_config()


def set_field(config: ml_collections.ConfigDict, path: str, value, *, where: str,
              whose: str = "the config") -> None:
  """Sets the existing leaf field `path` ("model.gamma") of `config` to `value`.

  A str value for a field of another type is read as that type ("0.5", "True"),
  as on a command line. Anything else that does not fit is a ValueError that
  starts with `where` (the flag or spec entry the value came from).
  """
  parent_path, _, leaf = path.rpartition(".")
  parent = config
  for part in parent_path.split(".") if parent_path else ():
    parent = parent.get(part) if isinstance(parent, ml_collections.ConfigDict) else None
  if not isinstance(parent, ml_collections.ConfigDict) or leaf not in parent:
    raise ValueError(f"{where}: {whose} has no field {path!r}.")
  current = parent[leaf]
  if isinstance(current, ml_collections.ConfigDict):
    raise ValueError(f"{where}: {path!r} is a section of the config; name one of its fields.")
  if isinstance(value, str) and current is not None and not isinstance(current, str):
    value = _read_as(value.strip(), type(current), where)
  try:
    parent[leaf] = value
  except TypeError as error:
    raise ValueError(f"{where}: {path}={value!r} does not fit the field ({error}).") from None


def _read_as(text: str, kind: type, where: str):
  if kind is bool:
    if text.lower() not in ("true", "false"):
      raise ValueError(f"{where}: use True or False.")
    return text.lower() == "true"
  try:
    return kind(text)
  except ValueError:
    raise ValueError(f"{where}: {text!r} is not a {kind.__name__}.") from None
