"""OmniAnomaly on one ASD server (default omi-1): the SMD run's settings on ASD's layout.

  python -m launch.train --config=configs/asd_omni.py:omi-1 --config.data.root=/path/to/ASD

With data.root empty the data is looked up under $TSAD_JAX_DATA_ROOT/ASD,
which holds train/, test/, test_label/ (and optionally interpretation_label/)
with one <server>.txt each, as SMD does.
"""

from configs import smd_omni


def get_config(entity: str = "omi-1"):
  config = smd_omni.get_config(entity)
  config.data.dataset = "asd"
  return config
