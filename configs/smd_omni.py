"""OmniAnomaly on one SMD machine (default machine-1-1): the headline run.

  python -m launch.train --config=configs/smd_omni.py \
      --config.data.root=/path/to/ServerMachineDataset --config.data.entity=machine-1-6

Or `--config=configs/smd_omni.py:machine-1-6`. With data.root empty the data
is looked up under $TSAD_JAX_DATA_ROOT/ServerMachineDataset.

The seed pipeline's flags map to fields as: --window_length data.window,
--d_model model.rnn_hidden, --d_ff model.dense_dim, --latent_dim model.z_dim,
--batch_size train.batch_size, --learning_rate optim.learning_rate,
--max_epoch train.max_epochs, --beta_kl model.beta_kl, --anomaly_ratio
threshold.anomaly_ratio, --normalize data.normalize. The paper's training
settings are kept (z_dim 3, 20 planar flows, 10 epochs, Adam at 1e-3 with L2
1e-4, gradient norm clipped at 10, the learning rate halved every 40 epochs,
POT on the training scores with q 1e-3); the network is smaller (GRU 64, dense
128 instead of 500 and 500) to train in about 4 minutes per machine on 2 CPU
cores. For the paper's sizes: --config.model.rnn_hidden=500
--config.model.dense_dim=500 --config.train.batch_size=50.
"""

from configs import common


def get_config(entity: str = "machine-1-1"):
  config = common.get_config("omni_anomaly")
  config.data.dataset = "smd"
  config.data.entity = entity
  config.data.window = 100
  config.data.train_stride = 5  # every 5th window per epoch, to fit 2 CPU cores
  config.train.batch_size = 64  # the paper uses 50: many small steps train it far better
  config.train.max_epochs = 10
  config.optim.l2 = 1e-4
  config.optim.schedule = "step"
  config.optim.decay_epochs = 40
  config.optim.decay_rate = 0.5
  return config
