"""LSTM autoencoder on one SMD machine (default machine-1-1).

  python -m launch.train --config=configs/smd_lstmae.py \
      --config.data.root=/path/to/ServerMachineDataset --config.data.entity=machine-1-6

Or `--config=configs/smd_lstmae.py:machine-1-6`. With data.root empty the data
is looked up under $TSAD_JAX_DATA_ROOT/ServerMachineDataset. Takes 3-5
minutes per machine on 2 CPU cores (training, then scoring train and test).
"""

from configs import common


def get_config(entity: str = "machine-1-1"):
  config = common.get_config("lstm_ae")
  config.data.dataset = "smd"
  config.data.entity = entity
  config.data.window = 100
  config.data.train_stride = 5  # every 5th window per epoch: ~8 s per epoch on 2 cores
  config.train.max_epochs = 20
  return config
