"""Every field a sweep spec has, with its default; specs in configs/sweeps/ override some.

A sweep trains one run per point of `grid` on top of the experiment config
`base`, ranks them by `metric`, and points at the best (tsad_jax/sweep.py).
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  sweep = ml_collections.ConfigDict()
  sweep.name = ""  # the sweep's folder: <workdir>/sweeps/<name>/
  # An experiment config in configs/: "demo", or with its argument "smd_lstmae:machine-1-1".
  sweep.base = "demo"
  # Fields set on every trial, by path: nested like the config ({"train": {"max_epochs": 5}},
  # overridable as --config.overrides.train.max_epochs=5) or dotted ({"train.max_epochs": 5}).
  sweep.overrides = ml_collections.ConfigDict(allow_dotted_keys=True)
  # Field path -> the values to try (a tuple, so --config.grid.optim.learning_rate='(1e-3,1e-2)'
  # works); the trials are every combination. Nested or dotted, as `overrides`.
  sweep.grid = ml_collections.ConfigDict(allow_dotted_keys=True)
  # Quick stage: every grid point trained for this many epochs, then the best `top_k` by
  # `quick_metric` trained fully. 0: no quick stage, every grid point trained fully.
  sweep.quick_epochs = 1
  sweep.top_k = 3
  # What ranks trials: "best_val_loss" (training's lowest validation loss: validation data
  # only). Ranking by the test labels is an oracle and must say so: "oracle:" and a
  # threshold-free metric's mean over entities ("oracle:VUS-PR"), or a path into
  # summary.json ("oracle:thresholds/pot/mean/F1"). `mode` says which way is better,
  # always explicitly: "min" or "max".
  sweep.metric = "best_val_loss"
  sweep.mode = "min"
  sweep.quick_metric = ""  # empty: `metric` (and `quick_mode` empty: `mode`)
  sweep.quick_mode = ""
  # Train the quick-stage trials that differ only in optimizer scalars together, in one
  # vmapped program (tsad_jax/sweep.py VMAP_FIELDS); needs quick_metric best_val_loss.
  sweep.vmap = True
  return sweep
