"""Shared defaults every experiment config starts from.

Per-model and per-dataset configs call `get_config()` here and override fields.
"""

import ml_collections

from tsad_jax.data import DATA_ROOT_ENV  # noqa: F401  (re-exported for configs)


def data_config() -> ml_collections.ConfigDict:
  """Which series to load and how to prepare them."""
  data = ml_collections.ConfigDict()
  data.dataset = "synthetic"  # synthetic | smd | smap | msl | csv
  # The data set's own folder (the one holding train/, test/, ...). Empty:
  # $TSAD_JAX_DATA_ROOT/<ServerMachineDataset|SMAP_MSL>.
  data.root = ""
  # SMD: "machine-1-6" or "machine-1-6,machine-2-1"; SMAP/MSL: a channel
  # ("P-1") or "all" (the whole spacecraft, concatenated); csv/synthetic: a name.
  data.entity = ""
  # launch.train_fleet only: one model per entity, all trained in one program. SMD
  # machines or SMAP/MSL channels, "all" or a comma list; data.entity is then ignored.
  data.entities = ""
  # Where preprocessed .npz caches go. Empty: $TSAD_JAX_CACHE or ~/.cache/tsad_jax.
  data.cache_dir = ""
  data.normalize = "minmax"  # minmax | zscore | none
  data.minmax_clip = 3.0  # minmax: test clipped to [-clip, 1 + clip]; 0: to the train range
  data.window = 100
  data.train_stride = 1
  data.test_stride = 1
  data.val_fraction = 0.1  # the last part of train (in time) is validation

  data.csv = ml_collections.ConfigDict()
  data.csv.train_file = ""  # relative to data.root, or absolute
  data.csv.test_file = ""
  data.csv.feature_columns = ""  # comma-separated; empty: every other column
  data.csv.timestamp_column = ""  # optional; dropped from the features
  data.csv.label_column = ""  # optional in train (dropped), required in test

  data.synthetic = ml_collections.ConfigDict()
  data.synthetic.seed = 0
  data.synthetic.num_features = 8
  data.synthetic.train_length = 6000
  data.synthetic.test_length = 6000
  data.synthetic.num_anomalies = 12
  data.synthetic.anomaly_scale = 1.0  # multiplies every anomaly's magnitude
  # comma-separated subset of: spike, level_shift, drift, frequency_change,
  # correlation_break, noise_burst
  data.synthetic.anomaly_types = (
      "spike,level_shift,drift,frequency_change,correlation_break,noise_burst")
  return data


def get_config() -> ml_collections.ConfigDict:
  """Every field a run reads, with defaults; experiment configs override some."""
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.run_id = ""  # empty: a new run; an existing run's id: resume it
  config.data = data_config()

  config.model = ml_collections.ConfigDict()
  config.model.name = "lstm_ae"

  config.init = ml_collections.ConfigDict()
  # A PyTorch state_dict (.pt/.pth) of the model's twin in interop/torch_models/ to
  # start from instead of a fresh init (fine-tuning); needs the [torch] extra.
  config.init.torch_checkpoint = ""

  config.optim = ml_collections.ConfigDict()
  config.optim.learning_rate = 1e-3
  config.optim.schedule = "constant"  # constant | cosine | step
  config.optim.decay_epochs = 10  # step schedule: multiply by decay_rate every decay_epochs
  config.optim.decay_rate = 0.5
  config.optim.grad_clip_norm = 10.0  # 0: no clipping
  config.optim.l2 = 0.0
  config.optim.max_consecutive_nonfinite = 20

  config.train = ml_collections.ConfigDict()
  config.train.batch_size = 256
  config.train.max_epochs = 10
  config.train.patience = 3  # epochs without a better validation loss; 0: never stop early
  config.train.checkpoint_every = 500  # steps; a checkpoint is also saved at the end
  config.train.keep_checkpoints = 3
  config.train.log_every = 20  # steps between progress-bar loss updates
  config.train.progress_bar = True
  # float32 | bfloat16: the forward and backward pass in bfloat16, parameters, optimizer
  # state and loss in float32 (for GPUs and TPUs; most CPUs run bfloat16 slower).
  config.train.compute_dtype = "float32"

  config.eval = ml_collections.ConfigDict()
  config.eval.batch_size = 512
  config.eval.point_rule = "last"  # last | mean: see tsad_jax/data/windows.py
  # How per-feature scores become the total alarms are raised on (tsad_jax/alarms.py):
  # causal smoothing (none | ewma | gaussian), then each feature scaled by the median
  # and IQR of the calibration scores (train: causal, from training data only) or of
  # the test series itself (test: transductive) or not at all (none), then summed
  # as they are (sum) or as -log tail probabilities (tail_p).
  # The defaults (EWMA 0.3, IQR floor 1.0, tail_p, POT q=0.05 at level 0.9) were
  # chosen on anomalies injected into held-out training data, never test data:
  # python -m bench.alarm_defaults, docs/alarm_defaults.md.
  config.eval.smoothing = "ewma"
  config.eval.smoothing_alpha = 0.3  # ewma: weight of the newest row
  config.eval.smoothing_sigma = 5.0  # gaussian: width in rows of the one-sided kernel
  config.eval.feature_scaling = "train"
  config.eval.scaling_floor = 1.0  # smallest IQR used, as a fraction of the mean IQR
  config.eval.aggregation = "tail_p"
  config.eval.vus_window = 100  # sliding window of VUS-PR / VUS-ROC (TSB-AD's default)
  config.eval.baselines = "zscore,pca"
  config.eval.pca_variance = 0.95
  config.eval.plots = True
  config.eval.residual_plots = 20  # models with residual matrices: heatmaps per entity, at most

  config.threshold = ml_collections.ConfigDict()
  # The first method raises the alarms; the others are reported beside it. pot |
  # spot | dspot (streaming, drift-aware) | percentile | tail_p | fixed: see
  # tsad_jax/thresholds/__init__.py.
  config.threshold.methods = "pot,percentile"
  # val: the held-out validation tail of the training series (never trained on);
  # train: the whole training series (in-sample). Scores the thresholds and the
  # causal feature scaling are fitted on.
  config.threshold.calibration = "val"
  config.threshold.pot_q = 0.05
  config.threshold.pot_level = 0.9
  config.threshold.dspot_depth = 10  # dspot: past non-alarm scores in the local mean
  config.threshold.anomaly_ratio = 5.0  # percent of calibration points above the threshold
  config.threshold.tail_probability = 1e-6  # tail_p: alarm below this joint tail probability
  config.threshold.fixed_value = 0.0
  return config


def lstm_ae(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Sets `config.model` to the LSTM autoencoder's defaults.

  `variant` adds a head of matanle51/LSTM_AutoEncoder (see tsad_jax/models/lstm_ae.py):
  "pred" forecasts the window's last `pred_steps` points from the others; "clf"
  classifies windows, trained on synthetic anomalies injected into the batch.
  """
  config.model = ml_collections.ConfigDict()
  config.model.name = "lstm_ae"
  config.model.hidden_size = 64
  config.model.dropout = 0.0
  config.model.output_sigmoid = False  # the seed's use_act: a sigmoid on the reconstruction
  config.model.variant = "ae"  # ae | pred (prediction head) | clf (classification head)
  config.model.pred_steps = 1  # pred: points forecast; the encoder reads window - pred_steps
  config.model.pred_weight = 1.0  # pred: loss = recon MSE + pred_weight * forecast MSE
  config.model.recon_weight = 1.0  # pred: score = forecast error + recon_weight * recon error
  config.model.clf_inject_ratio = 0.5  # clf: fraction of a batch's windows given an anomaly
  config.model.clf_inject_scale = 0.5  # clf: typical injected size, in normalised units
  config.model.clf_weight = 1.0  # clf: loss = clean recon MSE + clf_weight * BCE
  config.model.clf_weight_score = 1.0  # clf: score = recon error + this * probability / D
  return config


def transformer(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Sets `config.model` to the Transformer encoder's defaults."""
  config.model = ml_collections.ConfigDict()
  config.model.name = "transformer"
  config.model.d_model = 128
  config.model.n_heads = 4  # must divide d_model
  config.model.num_layers = 3
  config.model.d_ff = 256
  config.model.dropout = 0.1
  return config


def omni_anomaly(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Sets `config.model` to OmniAnomaly's defaults.

  The reference code's names: z_dim, rnn_num_hidden (rnn_hidden), dense_dim,
  nf_layers, test_n_z; the seed pipeline's --d_model is rnn_hidden, --d_ff
  dense_dim and --latent_dim z_dim.
  """
  config.model = ml_collections.ConfigDict()
  config.model.name = "omni_anomaly"
  config.model.z_dim = 3
  # The paper's 500 and 500 train at ~10 windows/s on 2 CPU cores, the seed's 128
  # and 256 at ~110 (batch 64); 64 and 128 at ~220 fit a CPU benchmark.
  config.model.rnn_hidden = 64
  config.model.dense_dim = 128
  config.model.nf_layers = 20  # planar flows on the posterior; 0: none
  config.model.connected_z_q = True  # posterior z_t depends on z_{t-1}
  config.model.connected_z_p = True  # linear Gaussian state space prior; False: N(0, I)
  config.model.std_epsilon = 1e-4
  config.model.beta_kl = 1.0
  config.model.test_n_z = 1  # posterior samples averaged in the score
  return config


def mtad_gat(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Sets `config.model` to MTAD-GAT's defaults (those of the public PyTorch port).

  The lookback is `data.window - 1` points: the window also holds the point
  forecast and scored, so data.window 101 is the port's lookback of 100.
  """
  config.model = ml_collections.ConfigDict()
  config.model.name = "mtad_gat"
  config.model.run_mode = "BOTH"  # FORECASTING | RECONSTRUCTING | BOTH
  config.model.recon_head = "gru"  # gru (the PyTorch port) | vae (the paper)
  config.model.target_dims = ""  # features forecast and reconstructed: "" all, or "0", "0,3"
  config.model.kernel_size = 7
  config.model.use_gatv2 = True
  config.model.feat_gat_embed_dim = 0  # 0: the lookback length; GATv2 doubles this width
  config.model.time_gat_embed_dim = 0  # 0: the number of features; GATv2 doubles it
  config.model.alpha = 0.2  # LeakyReLU slope in the attention
  config.model.gru_n_layers = 1
  config.model.gru_hid_dim = 150
  config.model.fc_n_layers = 3
  config.model.fc_hid_dim = 150
  config.model.recon_n_layers = 1
  config.model.recon_hid_dim = 150
  config.model.vae_latent_dim = 18  # recon_head="vae": the seed's bottleneck
  config.model.dropout = 0.3
  config.model.gamma = 1.0  # score = (forecast + gamma * reconstruction) / (1 + gamma)
  config.model.scale_scores = False  # min-max scale both parts by their training range first
  return config


def mscred(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Sets `config.model` to MSCRED's defaults (the paper's and the reference code's).

  The window must be max(scales) + gap * (steps - 1): 100 with these defaults.
  """
  config.model = ml_collections.ConfigDict()
  config.model.name = "mscred"
  config.model.scales = "10,30,60"  # history lengths of the signature matrices
  config.model.gap = 10  # time points between the ConvLSTM's steps
  config.model.steps = 5
  config.model.filters = "32,64,128,256"  # the 4 encoder levels
  config.model.score_mode = "residual"  # residual | count (the paper's broken entries)
  config.model.residual_threshold = 0.005  # count: a broken entry's squared residual
  config.model.score_scales = ""  # scales the score reads: "" all; "10" the reference code's
  config.model.score_stride = 10  # score every 10th window; points in between hold
  return config


def sd_mae(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Sets `config.model` to the self-distilled masked autoencoder's defaults (the seed's).

  The window (the seed's seq_length) is data.window and must equal
  num_patches * patch_size: 100 with these defaults.
  """
  config.model = ml_collections.ConfigDict()
  config.model.name = "sd_mae"
  config.model.d_model = 64
  config.model.nhead = 4  # must divide d_model
  config.model.num_encoder_layers = 3
  config.model.dim_feedforward = 256
  config.model.dropout = 0.1
  config.model.num_patches = 25
  config.model.patch_size = 4
  config.model.patchify_mode = "linear"  # linear | cnn_first | patch_cnn
  config.model.masking_ratio = 0.4  # training hides round(0.4 * 25) = 10 patches per window
  config.model.mask_last_n = 4  # points hidden (as whole patches) when scoring: one patch
  config.model.train_mask_last = True  # training masks always include those last patches
  config.model.distill_weight = 1.0  # loss = teacher MSE + distill_weight * discrepancy
  config.model.recon_weight = 1.0  # score = recon_weight * (teacher - x)^2
  config.model.discrepancy_weight = 1.0  # + discrepancy_weight * (teacher - student)^2
  # which points of each window the score reads: "last" (its last point) or "masked" (the
  # mean over the last mask_last_n points, the seed's evaluator)
  config.model.score_points = "last"
  return config


MODEL_DEFAULTS = {"lstm_ae": lstm_ae, "transformer": transformer, "omni_anomaly": omni_anomaly,
                  "mtad_gat": mtad_gat, "mscred": mscred, "sd_mae": sd_mae}


def defaults(model_name: str) -> ml_collections.ConfigDict:
  """Every field's default, with `model_name`'s model section (`get_config()` if unknown).

  What a run saved before some field existed takes that field from
  (tsad_jax/runs.py: add_missing_fields).
  """
  return MODEL_DEFAULTS.get(model_name, lambda config: config)(get_config())
