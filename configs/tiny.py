"""A tiny, seconds-long config for tests: small synthetic series, small model.

  python -m launch.train --config=configs/tiny.py
"""

from configs import common


def get_config(dataset: str = "synthetic"):
  config = common.get_config("lstm_ae")
  config.data.dataset = dataset
  config.data.entity = "synthetic" if dataset == "synthetic" else ""
  config.data.window = 16
  config.data.synthetic.num_features = 4
  config.data.synthetic.train_length = 600
  config.data.val_fraction = 0.25  # a held-out tail of 150 points: enough for POT at 0.9
  config.data.synthetic.test_length = 600
  config.data.synthetic.num_anomalies = 4
  config.model.hidden_size = 8
  config.train.batch_size = 32
  config.train.max_epochs = 2
  config.train.checkpoint_every = 10
  config.train.progress_bar = False
  config.eval.baselines = "zscore"
  config.eval.plots = False
  config.eval.vus_window = 10
  config.threshold.methods = "pot,spot,percentile"
  config.threshold.pot_level = 0.9
  config.threshold.dspot_depth = 10  # its 200-row calibration tail holds no deeper history
  return config
