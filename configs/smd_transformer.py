"""Transformer encoder reconstruction on one SMD machine (default machine-1-1).

  python -m launch.train --config=configs/smd_transformer.py \
      --config.data.root=/path/to/ServerMachineDataset --config.data.entity=machine-1-6

Or `--config=configs/smd_transformer.py:machine-1-6`. With data.root empty the
data is looked up under $TSAD_JAX_DATA_ROOT/ServerMachineDataset. It trains
over every 10th window per epoch to fit 2 CPU cores; docs/RESULTS.md gives the
time per machine.

The seed pipeline's flags and the config fields they became:

  --window_length 100  -> data.window = 100
  --d_model 128        -> model.d_model = 128
  --d_ff 256           -> model.d_ff = 256
  --n_heads 4          -> model.n_heads = 4
  --num_layers 3       -> model.num_layers = 3
  --dropout 0.1        -> model.dropout = 0.1
  --batch_size 256     -> train.batch_size = 256
  --learning_rate 1e-3 -> optim.learning_rate = 1e-3
  --max_epoch 20       -> train.max_epochs = 20
  (none)               -> data.train_stride = 10 (every 10th training window per epoch)
"""

from configs import common


def get_config(entity: str = "machine-1-1"):
  config = common.get_config("transformer")
  config.data.dataset = "smd"
  config.data.entity = entity
  config.data.window = 100
  # Every 10th window per epoch (the LSTM configs take every 5th): ~9 steps of 256
  # windows, 30-60 s per epoch on 2 CPU cores.
  config.data.train_stride = 10
  config.train.batch_size = 256
  config.optim.learning_rate = 1e-3
  config.train.max_epochs = 20
  return config
