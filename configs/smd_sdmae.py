"""Self-distilled masked autoencoder on one SMD machine (default machine-1-1).

  python -m launch.train --config=configs/smd_sdmae.py \
      --config.data.root=/path/to/ServerMachineDataset --config.data.entity=machine-1-6

Or `--config=configs/smd_sdmae.py:machine-1-6`. With data.root empty the data
is looked up under $TSAD_JAX_DATA_ROOT/ServerMachineDataset.

It trains over every 5th window per epoch: on machine-1-6 (2 busy CPU cores),
17 steps of 256 windows, ~0.35 s a step, 6-9 s an epoch after an 18 s first one
(the compile); the 20 epochs take under 3 minutes, and early stopping (patience
3) ended that machine's run after 8 epochs, 70 s. Scoring train and test adds
~25 s.

The seed project's Config fields and the config fields they became:

  seq_length 100           -> data.window = 100 (= num_patches * patch_size)
  d_model 64               -> model.d_model = 64
  nhead 4                  -> model.nhead = 4
  num_encoder_layers 3     -> model.num_encoder_layers = 3
  num_patches 25           -> model.num_patches = 25
  patch_size 4             -> model.patch_size = 4
  patchify_mode 'linear'   -> model.patchify_mode = "linear" (or cnn_first, patch_cnn)
  masking_ratio 0.4        -> model.masking_ratio = 0.4
  mask_last_n              -> model.mask_last_n = 4 (one patch)
  learning_rate 1e-3       -> optim.learning_rate = 1e-3
  batch_size 32            -> train.batch_size = 256 (fewer, larger steps on CPU)
  num_epochs 50            -> train.max_epochs = 20 (with early stopping)
  sliding_window_stride 10 -> data.train_stride = 5
  (none)                   -> model.distill_weight, recon_weight, discrepancy_weight = 1
  evaluator's window score -> model.score_points = "last" (the window's last point; "masked"
                              is the seed's mean over the masked last points)
"""

from configs import common


def get_config(entity: str = "machine-1-1"):
  config = common.get_config("sd_mae")
  config.data.dataset = "smd"
  config.data.entity = entity
  config.data.window = 100
  config.data.train_stride = 5
  config.train.batch_size = 256
  config.optim.learning_rate = 1e-3
  config.train.max_epochs = 20
  return config
