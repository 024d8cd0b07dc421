"""A state_dict saved from a model with the public ML4ITS MTAD_GAT layout and its default
arguments converts and matches.

`Port` below restates ML4ITS/mtad-gat-pytorch's `MTAD_GAT` (mtad_gat.py, modules.py):
the same submodules, parameter names, constructor arguments and defaults, and its
forward computed the way the port computes it (attention inputs built as every
concatenated node pair, the decoder input by repeat_interleave then view), so
it checks the twin's layout and the Flax model's function independently of
interop/torch_models/mtad_gat.py.
"""

import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="interop needs the [torch] extra (CI installs it)")
from torch import nn  # noqa: E402

from configs import common  # noqa: E402
from interop import convert  # noqa: E402
from interop.torch_models import mtad_gat as twin  # noqa: E402
from tsad_jax.models import mtad_gat  # noqa: E402

FEATURES, LOOKBACK, BATCH = 5, 12, 3


class PortAttention(nn.Module):
  """The port's FeatureAttentionLayer (`over_features`) or TemporalAttentionLayer."""

  def __init__(self, n_features, window_size, dropout, alpha, embed_dim, use_gatv2,
               over_features):
    super().__init__()
    self.over_features, self.use_gatv2, self.dropout = over_features, use_gatv2, dropout
    self.num_nodes = n_features if over_features else window_size
    node_width = window_size if over_features else n_features
    self.embed_dim = embed_dim if embed_dim is not None else node_width
    if use_gatv2:
      self.embed_dim *= 2
    lin_in = 2 * node_width if use_gatv2 else node_width
    a_in = self.embed_dim if use_gatv2 else 2 * self.embed_dim
    self.lin = nn.Linear(lin_in, self.embed_dim)
    self.a = nn.Parameter(torch.empty((a_in, 1)))
    nn.init.xavier_uniform_(self.a.data, gain=1.414)
    self.bias = nn.Parameter(torch.zeros(self.num_nodes, self.num_nodes))
    self.leakyrelu = nn.LeakyReLU(alpha)

  def pairs(self, v):
    """(b, K, K, 2w): [v_i ; v_j] for every node pair, row i then column j."""
    k = self.num_nodes
    left, right = v.repeat_interleave(k, dim=1), v.repeat(1, k, 1)
    return torch.cat((left, right), dim=2).view(v.size(0), k, k, -1)

  def forward(self, x):
    nodes = x.permute(0, 2, 1) if self.over_features else x
    if self.use_gatv2:
      e = torch.matmul(self.leakyrelu(self.lin(self.pairs(nodes))), self.a).squeeze(3)
    else:
      e = self.leakyrelu(torch.matmul(self.pairs(self.lin(nodes)), self.a)).squeeze(3)
    attention = torch.softmax(e + self.bias, dim=2)
    attention = torch.dropout(attention, self.dropout, train=self.training)
    h = torch.sigmoid(torch.matmul(attention, nodes))
    return h.permute(0, 2, 1) if self.over_features else h


class Port(nn.Module):
  """ML4ITS `MTAD_GAT(n_features, window_size, out_dim, ...)`, its signature and defaults."""

  def __init__(self, n_features, window_size, out_dim, kernel_size=7, feat_gat_embed_dim=None,
               time_gat_embed_dim=None, use_gatv2=True, gru_n_layers=1, gru_hid_dim=150,
               forecast_n_layers=1, forecast_hid_dim=150, recon_n_layers=1, recon_hid_dim=150,
               dropout=0.2, alpha=0.2):
    super().__init__()
    self.window_size = window_size
    self.conv = nn.Module()  # ConvLayer
    self.conv.padding = nn.ConstantPad1d((kernel_size - 1) // 2, 0.0)
    self.conv.conv = nn.Conv1d(n_features, n_features, kernel_size)
    self.feature_gat = PortAttention(n_features, window_size, dropout, alpha,
                                     feat_gat_embed_dim, use_gatv2, over_features=True)
    self.temporal_gat = PortAttention(n_features, window_size, dropout, alpha,
                                      time_gat_embed_dim, use_gatv2, over_features=False)
    self.gru = nn.Module()  # GRULayer
    self.gru.gru = nn.GRU(3 * n_features, gru_hid_dim, num_layers=gru_n_layers,
                          batch_first=True, dropout=0.0 if gru_n_layers == 1 else dropout)
    widths = [gru_hid_dim] + [forecast_hid_dim] * forecast_n_layers + [out_dim]
    self.forecasting_model = nn.Module()  # Forecasting_Model
    self.forecasting_model.layers = nn.ModuleList(
        [nn.Linear(i, o) for i, o in zip(widths[:-1], widths[1:], strict=True)])
    self.forecasting_model.dropout = nn.Dropout(dropout)
    self.recon_model = nn.Module()  # ReconstructionModel holding an RNNDecoder
    self.recon_model.decoder = nn.Module()
    self.recon_model.decoder.rnn = nn.GRU(gru_hid_dim, recon_hid_dim, recon_n_layers,
                                          batch_first=True,
                                          dropout=0.0 if recon_n_layers == 1 else dropout)
    self.recon_model.fc = nn.Linear(recon_hid_dim, out_dim)

  def forward(self, x):
    conv = self.conv
    x = torch.relu(conv.conv(conv.padding(x.permute(0, 2, 1)))).permute(0, 2, 1)
    h_cat = torch.cat([x, self.feature_gat(x), self.temporal_gat(x)], dim=2)
    _, h = self.gru.gru(h_cat)
    h_end = h[-1].view(x.shape[0], -1)

    forecaster = self.forecasting_model
    f = h_end
    for layer in forecaster.layers[:-1]:
      f = forecaster.dropout(torch.relu(layer(f)))
    predictions = forecaster.layers[-1](f)

    rep = h_end.repeat_interleave(self.window_size, dim=1).view(x.size(0), self.window_size, -1)
    decoded, _ = self.recon_model.decoder.rnn(rep)
    return predictions, self.recon_model.fc(decoded)


# Port constructor argument -> our config.model field, where the names differ.
_FIELD = {"forecast_n_layers": "fc_n_layers", "forecast_hid_dim": "fc_hid_dim"}
# The port's defaults our config must be given (ours differ: fc_n_layers 3, dropout 0.3).
PORT_DEFAULTS = dict(kernel_size=7, feat_gat_embed_dim=None, time_gat_embed_dim=None,
                     use_gatv2=True, gru_n_layers=1, gru_hid_dim=150, forecast_n_layers=1,
                     forecast_hid_dim=150, recon_n_layers=1, recon_hid_dim=150, dropout=0.2,
                     alpha=0.2)


def our_config(port_args: dict):
  """config.model of our MTAD-GAT set to the port's arguments (None embed dims: 0)."""
  config = common.get_config("mtad_gat").model
  config.update({_FIELD.get(k, k): (0 if v is None else v) for k, v in port_args.items()})
  return config


@pytest.mark.parametrize("overrides", [
    {},  # the port's defaults
    {"use_gatv2": False},
    # args.py's fc_n_layers, set embed dims (GATv2 doubles them), stacked GRUs.
    {"forecast_n_layers": 3, "feat_gat_embed_dim": 4, "time_gat_embed_dim": 3,
     "gru_n_layers": 2, "recon_n_layers": 2},
], ids=["defaults", "gat", "options"])
def test_ml4its_mtad_gat_state_dict_converts_and_matches(tmp_path, overrides):
  port_args = {**PORT_DEFAULTS, **overrides}
  torch.manual_seed(0)
  port = Port(FEATURES, LOOKBACK, FEATURES, **port_args).eval()
  with torch.no_grad():  # the attention biases start at zero; make them count
    for attention in (port.feature_gat, port.temporal_gat):
      attention.bias.normal_(0.0, 0.5)
  path = tmp_path / "ml4its.pt"
  torch.save(port.state_dict(), path)

  config = our_config(port_args)
  ours = twin.build(config, num_features=FEATURES, window=LOOKBACK + 1)
  port_shapes = {k: tuple(v.shape) for k, v in port.state_dict().items()}
  assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == port_shapes
  assert list(ours.state_dict()) == list(port_shapes)

  params = convert.params_from_checkpoint(path, config, num_features=FEATURES,
                                          window=LOOKBACK + 1)
  x = np.random.default_rng(0).normal(size=(BATCH, LOOKBACK, FEATURES)).astype(np.float32)
  model = mtad_gat.build(config, num_features=FEATURES, window=LOOKBACK + 1)
  out = model.apply({"params": params}, jnp.asarray(x))
  with torch.no_grad():
    forecast, recon = port(torch.from_numpy(x))
  np.testing.assert_allclose(out["forecast"], forecast.numpy(), rtol=0, atol=1e-5)
  np.testing.assert_allclose(out["recon"], recon.numpy(), rtol=0, atol=1e-5)

  ours.load_state_dict(torch.load(path, weights_only=True))
  with torch.no_grad():
    twin_out = ours.eval()(torch.from_numpy(x))
  np.testing.assert_allclose(twin_out["forecast"].numpy(), forecast.numpy(), rtol=0, atol=1e-5)
  np.testing.assert_allclose(twin_out["recon"].numpy(), recon.numpy(), rtol=0, atol=1e-5)
