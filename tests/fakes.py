"""Stand-ins for a model file (tsad_jax/models/<name>.py) in tests."""

import types

from tsad_jax.models import Hooks


def model_file(**attributes) -> types.ModuleType:
  """A module with the given functions and constants, as a model file would define them.

  A real module rather than a namespace: the scorer's compiled functions take the
  model file as a static (hashable) argument.
  """
  module = types.ModuleType("fake_model")
  module.__dict__.update({"HOOKS": Hooks(), **attributes})
  return module
