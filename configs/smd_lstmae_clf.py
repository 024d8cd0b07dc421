"""LSTM autoencoder with a classification head on one SMD machine (default machine-1-1).

  python -m launch.train --config=configs/smd_lstmae_clf.py:machine-1-6

A dense head on the decoder's state gives the probability that a window holds
an anomaly. SMD's training series has no labels, so half of every batch's
windows get a synthetic spike or level shift and the head learns to tell them
apart (tsad_jax/models/lstm_ae.py); the score of a point is its squared
reconstruction error plus that probability spread over the features. With
data.root empty the data is looked up under $TSAD_JAX_DATA_ROOT/ServerMachineDataset.
configs/smd_lstmae.py with the variant set; takes about as long: 3-5 minutes
per machine on 2 CPU cores.
"""

from configs import smd_lstmae


def get_config(entity: str = "machine-1-1"):
  config = smd_lstmae.get_config(entity)
  config.model.variant = "clf"
  return config
