"""MTAD-GAT on the whole SMAP spacecraft, as the paper and the PyTorch port evaluate it.

  python -m launch.train --config=configs/smap_mtadgat.py --config.data.root=/path/to/SMAP_MSL

Every channel's series are concatenated into one entity (53 channels; see
configs/smap_omni.py). Column 0 of each channel is the telemetry value, the
other 24 are one-hot commands: like the port, only channel 0 is forecast,
reconstructed and scored (model.target_dims "0"), while both attention
layers read every column. Or `--config=configs/smap_mtadgat.py:<channel>`
for one channel. Model settings as configs/smd_mtadgat.py; 5 epochs over
every 10th training window, to fit 2 CPU cores.
"""

from configs import smd_mtadgat


def get_config(entity: str = "all"):
  config = smd_mtadgat.get_config(entity)
  config.data.dataset = "smap"
  config.model.target_dims = "0"
  config.data.train_stride = 10
  config.train.max_epochs = 5
  return config
