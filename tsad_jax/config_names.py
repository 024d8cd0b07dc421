"""Configs by name, and the comma lists config fields hold: one reader of each for every caller."""

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
