"""MSCRED on one SMD machine (default machine-1-1).

  python -m launch.train --config=configs/smd_mscred.py \
      --config.data.root=/path/to/ServerMachineDataset --config.data.entity=machine-1-6

Or `--config=configs/smd_mscred.py:machine-1-6`. With data.root empty the data
is looked up under $TSAD_JAX_DATA_ROOT/ServerMachineDataset.

The paper's model (scales 10, 30, 60; 5 steps 10 apart; filters 32/64/128/256)
and the reference code's Adam at 2e-4. The window is the 100 points the
signature matrices of 5 steps need (60 + 10 * 4). With 38 features a window
costs a few GFLOP, most of it in the ConvLSTMs. Measured on 2 CPU cores while
another job used about one of them: a training step takes ~225 ms per window
(3.6 s at batch 16) and scoring ~55 ms per window (batch 32). So an epoch
takes every 50th training window (~460 on machine-1-6, ~1.7 min alone) and 3
epochs train in about 5 minutes on idle cores. Scoring takes every 10th window
(model.score_stride, as the paper scores every gap-th point; the points in
between hold the last score): ~2.4k test and ~2.4k training windows of
machine-1-6, about 4.5 minutes. docs/RESULTS.md gives the measured times and
figures per machine. --config.model.score_stride=1 scores every point at 10
times the scoring time; on machine-1-6 that moved VUS-PR only from 0.412 to
0.420 (bench/accuracy_notes.md).
"""

from configs import common


def get_config(entity: str = "machine-1-1"):
  config = common.get_config("mscred")
  config.data.dataset = "smd"
  config.data.entity = entity
  config.data.window = 100  # max(scales) + gap * (steps - 1)
  config.data.train_stride = 50
  config.train.batch_size = 16  # the cost is per window; smaller batches give more steps
  config.train.max_epochs = 3  # ~5 minutes per SMD machine on 2 CPU cores
  config.optim.learning_rate = 2e-4  # both reference implementations (PyTorch and TF)
  config.eval.batch_size = 32
  return config
