"""MTAD-GAT on the whole MSL spacecraft, as the paper and the PyTorch port evaluate it.

  python -m launch.train --config=configs/msl_mtadgat.py --config.data.root=/path/to/SMAP_MSL

Every channel's series are concatenated into one entity (27 channels; see
configs/msl_omni.py). Only channel 0, the telemetry value, is forecast,
reconstructed and scored (model.target_dims "0"); the attention layers read
every column, the one-hot commands included. Model settings as
configs/smap_mtadgat.py, over every 5th training window.
"""

from configs import smap_mtadgat


def get_config(entity: str = "all"):
  config = smap_mtadgat.get_config(entity)
  config.data.dataset = "msl"
  config.data.train_stride = 5
  return config
