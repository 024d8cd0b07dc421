"""LSTM autoencoder with a prediction head on one SMD machine (default machine-1-1).

  python -m launch.train --config=configs/smd_lstmae_pred.py:machine-1-6

The encoder reads the first 99 points of each 100-point window, the decoder
reconstructs them and a dense head on the encoder's state forecasts the last
point; the score of a timestep is its squared forecast error plus the
reconstruction error of the point before it (tsad_jax/models/lstm_ae.py). With
data.root empty the data is looked up under $TSAD_JAX_DATA_ROOT/ServerMachineDataset.
configs/smd_lstmae.py with the variant set; takes about as long: 3-5 minutes
per machine on 2 CPU cores.
"""

from configs import smd_lstmae


def get_config(entity: str = "machine-1-1"):
  config = smd_lstmae.get_config(entity)
  config.model.variant = "pred"  # model.pred_steps = 1: forecast the last point
  return config
