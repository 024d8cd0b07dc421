"""OmniAnomaly on the whole MSL spacecraft, evaluated as the paper does.

  python -m launch.train --config=configs/msl_omni.py --config.data.root=/path/to/SMAP_MSL

Every channel's series are concatenated into one entity
(58,317 train and 73,729 test rows over 27 channels), one model is
trained on all of them, and every test point is scored. Or
`--config=configs/msl_omni.py:<channel>` for one channel. With data.root
empty the data is looked up under $TSAD_JAX_DATA_ROOT/SMAP_MSL. Model and
training settings as configs/smd_omni.py.
"""

from configs import smd_omni


def get_config(entity: str = "all"):
  config = smd_omni.get_config(entity)
  config.data.dataset = "msl"
  config.data.train_stride = 10  # every 10th window per epoch, to fit 2 CPU cores
  return config
