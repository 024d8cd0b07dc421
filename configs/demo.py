"""LSTM autoencoder on the embedded synthetic data set: no download needed.

  python -m launch.train --config=configs/demo.py

Trains for about 90 seconds on 2 CPU cores and writes
runs/synthetic/synthetic/lstm_ae/<run_id>/ with summary.json and plots; the
summary compares the model with the zscore and pca baselines.
"""

from configs import common


def get_config():
  config = common.get_config("lstm_ae")
  config.data.dataset = "synthetic"
  config.data.entity = "synthetic"
  config.data.window = 50
  config.train.max_epochs = 20
  config.threshold.methods = "dspot,pot,spot,percentile"  # the default's alarms, and others beside
  config.train.batch_size = 128
  return config
