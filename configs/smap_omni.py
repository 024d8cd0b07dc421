"""OmniAnomaly on the whole SMAP spacecraft, evaluated as the paper does.

  python -m launch.train --config=configs/smap_omni.py --config.data.root=/path/to/SMAP_MSL

Every channel's series are concatenated into one entity
(135,183 train and 427,617 test rows over 53 channels), one model is
trained on all of them, and every test point is scored. Or
`--config=configs/smap_omni.py:<channel>` for one channel. With data.root
empty the data is looked up under $TSAD_JAX_DATA_ROOT/SMAP_MSL. Model and
training settings as configs/smd_omni.py.
"""

from configs import smd_omni


def get_config(entity: str = "all"):
  config = smd_omni.get_config(entity)
  config.data.dataset = "smap"
  config.data.train_stride = 20  # every 20th window per epoch, to fit 2 CPU cores
  return config
