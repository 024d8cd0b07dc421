"""The random draws a Flax model makes, so a PyTorch twin can use the same ones.

Flax models `self.sow("noise", name, value)` each draw they make (a Gaussian
sample, a mask, the windows given a synthetic anomaly). The collection is not
mutable in ordinary use, so sowing costs nothing there. `Recorder` wraps a
module: the model file's `loss` and `score` call `recorder.apply` like
`model.apply`, and the recorder keeps what each call sowed, in call order.
"""

import jax
import numpy as np


class Recorder:
  """Stands in for a linen module; `calls` holds one dict of sown draws per apply."""

  def __init__(self, model):
    self.model = model
    self.calls: list[dict] = []

  def apply(self, variables, *args, **kwargs):
    if kwargs.get("mutable"):
      raise ValueError("Recorder.apply: the model file asked for mutable collections itself.")
    out, state = self.model.apply(variables, *args, mutable=["noise"], **kwargs)
    self.calls.append(state.get("noise", {}))
    return out

  def __getattr__(self, name):
    return getattr(self.model, name)


def record(fn, model, *args, **kwargs) -> tuple[object, list[dict]]:
  """Runs `fn(recorder, *args, **kwargs)` compiled; returns its output and the draws.

  `fn` is a model file's `loss` or `score`; `args` are arrays (parameters,
  windows), `kwargs` anything (they are fixed into the compiled function). It
  must call `apply` outside any jax transformation of its own.
  """

  def run(*arrays):
    recorder = Recorder(model)
    return fn(recorder, *arrays, **kwargs), recorder.calls

  out, calls = jax.jit(run)(*args)
  return out, jax.tree.map(np.asarray, calls)
