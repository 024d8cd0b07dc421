"""The MAE seed's two-stage search for the patch_cnn SD-MAE on one SMD machine.

  python -m launch.sweep --config=configs/sweeps/smd_sdmae.py:machine-1-6 --workdir=runs

Eight grid points (learning rate x masking ratio x d_model) on top of
configs/smd_sdmae.py with patchify_mode patch_cnn. The quick stage trains each
for one epoch (the seed's quick search), the two with the lowest validation
loss then train fully, and the best full run is the one with the lowest
validation loss. Nothing reads the test labels: the validation loss is the
masked-last-patch reconstruction loss on the held-out end of the training
series, the task the score asks for, so it compares trials of any masking
ratio. `python -m bench.accuracy --jobs=smd_sdmae_patch_cnn_swept` runs it on
every SMD machine (about 6 minutes a machine on 2 CPU cores).
"""

import ml_collections

from configs.sweeps import common


def get_config(entity: str = "machine-1-1"):
  sweep = common.get_config()
  sweep.name = f"smd_sdmae_patch_cnn-{entity}"
  sweep.base = f"smd_sdmae:{entity}"
  sweep.overrides = ml_collections.ConfigDict({
      "model": {"patchify_mode": "patch_cnn"},
      "train": {"progress_bar": False},
  })
  sweep.grid = ml_collections.ConfigDict({
      "optim": {"learning_rate": (1e-3, 3e-4)},
      "model": {"masking_ratio": (0.4, 0.6), "d_model": (64, 128)},
  })
  sweep.top_k = 2  # the defaults do the rest: 1 quick epoch, both stages by best_val_loss
  return sweep
