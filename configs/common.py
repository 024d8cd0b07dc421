"""Shared defaults every experiment config starts from.

Per-model and per-dataset configs call `get_config()` here and override fields.
"""

import ml_collections

from tsad_jax import models
from tsad_jax.data import DATA_ROOT_ENV  # noqa: F401  (re-exported for configs)


def data_config() -> ml_collections.ConfigDict:
  """Which series to load and how to prepare them."""
  data = ml_collections.ConfigDict()
  data.dataset = "synthetic"  # synthetic | smd | asd | smap | msl | csv
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
  # Gaps (empty, NaN or inf cells) in CSV input: error | ffill (the column's last value) |
  # interpolate (a straight line to its next value); see tsad_jax/data/rows.py.
  data.missing = "error"

  data.csv = ml_collections.ConfigDict()
  data.csv.train_file = ""  # relative to data.root, or absolute
  data.csv.test_file = ""
  data.csv.feature_columns = ""  # comma-separated; empty: every other column
  data.csv.timestamp_column = ""  # optional; dropped from the features
  # Dropped from train; in test the 0/1 labels, where the column exists (else unlabeled).
  data.csv.label_column = "label"

  data.synthetic = ml_collections.ConfigDict()
  data.synthetic.seed = 0
  data.synthetic.num_features = 8
  data.synthetic.train_length = 6000
  data.synthetic.test_length = 6000
  data.synthetic.num_anomalies = 12
  data.synthetic.anomaly_scale = 1.0  # multiplies every anomaly's magnitude
  data.synthetic.labels = True  # False: the test series comes unlabeled (scores and alarms only)
  # comma-separated subset of: spike, level_shift, drift, frequency_change,
  # correlation_break, noise_burst
  data.synthetic.anomaly_types = (
      "spike,level_shift,drift,frequency_change,correlation_break,noise_burst")
  return data


def get_config(model: str = "lstm_ae") -> ml_collections.ConfigDict:
  """Every field a run reads, with defaults and `model`'s section (its model file's
  `defaults()`); experiment configs override some."""
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.run_id = ""  # empty: a new run; an existing run's id: resume it
  config.data = data_config()

  config.model = models.defaults(model)

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
  # The defaults (one-sided Gaussian smoothing of width 2, IQR floor 1.0, sum, DSPOT
  # q=0.01 at level 0.95 with depth 100) were chosen on anomalies injected into
  # held-out training data, never test data: python -m bench.alarm_defaults,
  # docs/alarm_defaults.md.
  config.eval.smoothing = "gaussian"
  config.eval.smoothing_alpha = 0.3  # ewma: weight of the newest row
  config.eval.smoothing_sigma = 2.0  # gaussian: width in rows of the one-sided kernel
  config.eval.feature_scaling = "train"
  config.eval.scaling_floor = 1.0  # smallest IQR used, as a fraction of the mean IQR
  config.eval.aggregation = "sum"
  config.eval.vus_window = 100  # sliding window of VUS-PR / VUS-ROC (TSB-AD's default)
  config.eval.baselines = "zscore,pca"
  config.eval.pca_variance = 0.95
  config.eval.plots = True
  config.eval.residual_plots = 20  # models with residual matrices: heatmaps per entity, at most

  config.threshold = ml_collections.ConfigDict()
  # The first method raises the alarms; the others are reported beside it. pot |
  # spot | dspot (streaming, drift-aware) | percentile | tail_p | fixed: see
  # tsad_jax/thresholds/__init__.py.
  config.threshold.methods = "dspot,pot"
  # val: the held-out validation tail of the training series (never trained on);
  # train: the whole training series (in-sample). Scores the thresholds and the
  # causal feature scaling are fitted on.
  config.threshold.calibration = "val"
  config.threshold.pot_q = 0.01
  config.threshold.pot_level = 0.95
  config.threshold.dspot_depth = 100  # dspot: past non-alarm scores in the local mean
  # dspot: after this many alarms in a row the level they are at becomes the normal
  # one, so a lasting shift is one alarm event, not a flood (0: never, as Siffer et
  # al.; 30 was chosen by bench.alarm_defaults).
  config.threshold.dspot_relearn = 30
  config.threshold.anomaly_ratio = 5.0  # percent of calibration points above the threshold
  config.threshold.tail_probability = 1e-6  # tail_p: alarm below this joint tail probability
  config.threshold.fixed_value = 0.0
  return config


def defaults(model_name: str) -> ml_collections.ConfigDict:
  """Every field's default, with `model_name`'s model section (lstm_ae's if unknown).

  What a run saved before some field existed takes that field from
  (tsad_jax/runs.py: add_missing_fields).
  """
  return get_config(model_name if model_name in models.available() else "lstm_ae")
