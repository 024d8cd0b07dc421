"""A tiny sweep on the embedded synthetic data: 2 learning rates x 2 LSTM sizes.

  python -m launch.sweep --config=configs/sweeps/demo_quick.py --workdir=runs

Runs in about a minute on 2 CPU cores. The quick stage trains all four grid
points for one epoch, the two learning rates of each hidden size together in
one vmapped program; the two with the lowest validation loss then train for
3 epochs and are ranked again by validation loss (no test label is read; with
`--config.metric=oracle:VUS-PR --config.mode=max` they are ranked by the test labels,
an oracle). Writes runs/sweeps/demo_quick/results.csv
and best.json (the best run folder, for `launch.evaluate --run=`).
"""

import ml_collections

from configs.sweeps import common


def get_config():
  sweep = common.get_config()
  sweep.name = "demo_quick"
  sweep.base = "demo"
  sweep.overrides = ml_collections.ConfigDict({  # demo shrunk to seconds per trial
      "data": {"window": 16, "val_fraction": 0.2,
               "synthetic": {"num_features": 4, "train_length": 1000,
                             "test_length": 1000, "num_anomalies": 4}},
      "train": {"max_epochs": 3, "batch_size": 64, "progress_bar": False},
      "eval": {"baselines": "zscore", "plots": False, "vus_window": 20},
      "threshold": {"methods": "pot", "pot_level": 0.9},  # its 200-row tail: 101 needed
  })
  sweep.grid = ml_collections.ConfigDict({
      "optim": {"learning_rate": (1e-3, 1e-2)},
      "model": {"hidden_size": (8, 16)},
  })
  sweep.quick_epochs = 1
  sweep.top_k = 2
  sweep.quick_metric = "best_val_loss"
  sweep.quick_mode = "min"
  sweep.metric = "best_val_loss"
  sweep.mode = "min"
  return sweep
