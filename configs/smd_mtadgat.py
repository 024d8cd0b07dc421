"""MTAD-GAT on one SMD machine (default machine-1-1), as the public PyTorch port runs it.

  python -m launch.train --config=configs/smd_mtadgat.py \
      --config.data.root=/path/to/ServerMachineDataset --config.data.entity=machine-1-6

Or `--config=configs/smd_mtadgat.py:machine-1-6`. With data.root empty the
data is looked up under $TSAD_JAX_DATA_ROOT/ServerMachineDataset. The port's
defaults (ML4ITS/mtad-gat-pytorch): lookback 100 (data.window 101: the lookback
and the point forecast), GATv2, GRU 150, a 3-layer forecasting MLP and a GRU
reconstruction decoder of width 150, dropout 0.3, Adam at 1e-3, batch 256,
every feature forecast and reconstructed, score gamma 1. Three epochs over
every training window, as the measured PyTorch reference ran it; on 2 CPU
cores an epoch takes about 3 minutes (docs/RESULTS.md gives the times).

The seed's flags and their fields: --run_mode model.run_mode (FORECASTING,
RECONSTRUCTING, BOTH), the VAE head model.recon_head=vae with
model.vae_latent_dim (the seed's 18), its score scaling model.scale_scores.
"""

from configs import common


def get_config(entity: str = "machine-1-1"):
  config = common.get_config("mtad_gat")
  config.data.dataset = "smd"
  config.data.entity = entity
  config.data.window = 101
  config.data.train_stride = 1
  config.train.batch_size = 256
  config.train.max_epochs = 3
  config.optim.learning_rate = 1e-3
  return config
