"""The embedded synthetic data set: correlated server-like metrics with labelled anomalies.

Each metric is a positive base level plus a random mix (the loading matrix) of
latent factors shared by all metrics: a daily load cycle, a faster cycle, a
slowly wandering factor and a trend; plus its own autocorrelated noise and
unit scale, like CPU, memory, network and disk metrics of one server. Train
and test are consecutive stretches of one series; the training stretch is
clean and the test stretch carries `num_anomalies` labelled segments. Each
segment hits a random subset of metrics (recorded in `Segment.dims`) with a
change `anomaly_scale` times its nominal size, relative to the metric's spread:

  spike              1-3 points far outside the usual range
  level_shift        a constant offset
  drift              a ramp away from normal, ending with the segment
  frequency_change   the metric's cycles run three times as fast
  correlation_break  the metric's cycles are half a day out of phase with the others
  noise_burst        strong white noise

Everything follows from `seed`: the clean series from one random stream, the
anomalies from another, so changing only the anomalies leaves the series as is.
"""

from collections.abc import Sequence
import dataclasses
import functools
from typing import NamedTuple

import ml_collections
import numpy as np

from tsad_jax import config_names
from tsad_jax.data.types import DataError
from tsad_jax.data.types import Dataset
from tsad_jax.data.types import Entity
from tsad_jax.data.types import Segment

ANOMALY_TYPES = ("spike", "level_shift", "drift", "frequency_change", "correlation_break",
                 "noise_burst")
METRIC_NAMES = ("cpu_user", "cpu_system", "memory_used", "load_avg", "net_in", "net_out",
                "disk_read", "disk_write")
DAY = 288  # Steps per simulated day (5-minute samples).
FAST = DAY // 8
ANOMALY_FRACTION = 0.1  # Rough share of labelled test points.

# Nominal length range of each type, in units of the mean budgeted length.
_LENGTHS = {"level_shift": (0.6, 1.4), "drift": (0.8, 1.6), "frequency_change": (0.8, 1.6),
            "correlation_break": (0.8, 1.6), "noise_burst": (0.4, 1.0)}


class Generated(NamedTuple):
  """A synthetic entity, the type of each of its segments, and its metric names."""

  entity: Entity
  anomaly_types: tuple[str, ...]
  feature_names: tuple[str, ...]


class _Model(NamedTuple):
  """The clean series' ingredients.

  Metric d at time t is scale[d] * (base[d] + cycles(t) @ cycle_loadings[d]
  + slow[t] @ slow_loadings[d] + noise[t, d]).
  """

  base: np.ndarray  # (D,)
  scale: np.ndarray  # (D,)
  phases: np.ndarray  # (2,)
  cycle_loadings: np.ndarray  # (D, 3)
  slow_loadings: np.ndarray  # (D, 2)
  slow: np.ndarray  # (T, 2): wandering factor and trend
  noise: np.ndarray  # (T, D)


def load(options: ml_collections.ConfigDict, entity: str = "") -> Dataset:
  """The synthetic data set config.data.synthetic describes, as a Dataset (with its labels
  left out when `options.labels` is False)."""
  generated = from_config(options, entity or "synthetic")
  entity = generated.entity
  if not options.get("labels", True):
    entity = dataclasses.replace(entity, labels=None, segments=())
  return Dataset(name="synthetic", entities=(entity,),
                 feature_names=generated.feature_names, points_per_day=DAY)


def from_config(options: ml_collections.ConfigDict, name: str = "synthetic") -> Generated:
  """`generate` with the fields of config.data.synthetic."""
  return generate(
      seed=options.seed, num_features=options.num_features, train_length=options.train_length,
      test_length=options.test_length, num_anomalies=options.num_anomalies,
      anomaly_scale=options.anomaly_scale, anomaly_types=options.anomaly_types, name=name)


def generate(*, seed: int = 0, num_features: int = 8, train_length: int = 6000,
             test_length: int = 6000, num_anomalies: int = 12, anomaly_scale: float = 1.0,
             anomaly_types: Sequence[str] | str = ANOMALY_TYPES,
             name: str = "synthetic") -> Generated:
  """Generates one entity: a clean train series and a test series with anomalies.

  `anomaly_types` is a sequence of names or a comma-separated string. With at
  least as many anomalies as types, every type occurs.

  Returns:
    The entity, the type of each segment (in segment order) and metric names.
  """
  if isinstance(anomaly_types, str):
    anomaly_types = config_names.comma_list(anomaly_types)
  _check_arguments(num_features, train_length, test_length, num_anomalies, anomaly_scale,
                   anomaly_types)
  series_seed, anomaly_seed = np.random.SeedSequence(seed).spawn(2)
  length = train_length + test_length
  model = _model(np.random.default_rng(series_seed), length, num_features)
  clean = _series(model, np.arange(length))
  spread = clean[:train_length].std(axis=0) / model.scale
  reread = lambda times, new_times, dims: _cycle_change(model, new_times + train_length,
                                                        times + train_length, dims)
  injected = _inject(clean[train_length:], np.random.default_rng(anomaly_seed), spread=spread,
                     units=model.scale, reread=reread, num_anomalies=num_anomalies,
                     anomaly_types=anomaly_types, anomaly_scale=anomaly_scale)
  entity = Entity(name=name, train=clean[:train_length].astype(np.float32),
                  test=injected.series.astype(np.float32), labels=injected.labels,
                  segments=injected.segments)
  return Generated(entity, injected.kinds, metric_names(num_features))


class Injected(NamedTuple):
  """A series with anomalies added: the series, its 0/1 labels, segments and their kinds."""

  series: np.ndarray
  labels: np.ndarray
  segments: tuple[Segment, ...]
  kinds: tuple[str, ...]


def inject(series: np.ndarray, *, rng: np.random.Generator, num_anomalies: int,
           anomaly_types: Sequence[str] = ANOMALY_TYPES, anomaly_scale: float = 1.0,
           spread: np.ndarray | None = None, lasting_shift: bool = False) -> Injected:
  """A copy of a real (T, D) series with the generator's anomalies added, and their labels.

  The same kinds, lengths and sizes as `generate` puts in its test series, each
  relative to a feature's `spread` (default: its standard deviation in
  `series`). A frequency change reads the series itself three times as fast
  over the segment, a correlation break reads its hit features half a
  (synthetic) day away, so both keep the series' own shapes. Used to measure
  how well alarms catch anomalies without test labels (bench/alarm_defaults.py).

  With `lasting_shift`, a level shift that never ends also starts somewhere in
  the series' first half, as when a server is reconfigured. It is labelled for
  as long as a passing level shift would be: the change is an anomaly to be
  told about once, and the level after it is the new normal.
  """
  series = np.asarray(series, np.float64)
  spread = series.std(axis=0) if spread is None else spread
  last = len(series) - 1
  reread = lambda times, new_times, dims: (
      series[np.clip(np.rint(new_times), 0, last).astype(int)][:, dims] - series[times][:, dims])
  injected = _inject(series, rng, spread=spread, units=np.ones(series.shape[1]), reread=reread,
                     num_anomalies=num_anomalies, anomaly_types=anomaly_types,
                     anomaly_scale=anomaly_scale)
  if not lasting_shift:
    return injected
  return _shift_for_good(injected, rng, spread * anomaly_scale, num_anomalies)


def _shift_for_good(injected: Injected, rng: np.random.Generator, spread: np.ndarray,
                    num_anomalies: int) -> Injected:
  length, num_features = injected.series.shape
  start = int(rng.integers(length // 10, length // 2))
  labelled = _length(rng, "level_shift", length, max(1, num_anomalies))
  dims = np.sort(rng.choice(num_features, size=_num_hit(rng, num_features), replace=False))
  series, labels = injected.series.copy(), injected.labels.copy()
  series[start:, dims] += _delta(rng, "level_shift", None, np.arange(start, length), spread[dims])
  labels[start:start + labelled] = 1
  segment = Segment(start, start + labelled - 1, tuple(int(d) for d in dims))
  return Injected(series, labels, injected.segments + (segment,),
                  injected.kinds + ("lasting_shift",))


def _inject(clean: np.ndarray, rng: np.random.Generator, *, spread, units, reread,
            num_anomalies, anomaly_types, anomaly_scale) -> Injected:
  """Anomalies at random places of `clean` (T, D); `reread(times, new_times, dims)` gives the
  change of the features `dims` when read at `new_times` instead of `times`, in spread units."""
  length, num_features = clean.shape
  kinds = rng.permutation([anomaly_types[i % len(anomaly_types)] for i in range(num_anomalies)])
  spans = _place(rng, [_length(rng, kind, length, num_anomalies) for kind in kinds], length)
  series = clean.copy()
  labels = np.zeros(length, dtype=np.uint8)
  segments = []
  for kind, (start, end) in zip(kinds, spans, strict=True):
    dims = np.sort(rng.choice(num_features, size=_num_hit(rng, num_features), replace=False))
    times = np.arange(start, end + 1)
    delta = _delta(rng, str(kind), functools.partial(reread, times, dims=dims), times,
                   spread[dims])
    series[start:end + 1, dims] += anomaly_scale * delta * units[dims]
    labels[start:end + 1] = 1
    segments.append(Segment(int(start), int(end), tuple(int(d) for d in dims)))
  return Injected(series, labels, tuple(segments), tuple(str(kind) for kind in kinds))


def metric_names(num_features: int) -> tuple[str, ...]:
  extra = tuple(f"metric_{i}" for i in range(len(METRIC_NAMES), num_features))
  return (METRIC_NAMES + extra)[:num_features]


def _check_arguments(num_features, train_length, test_length, num_anomalies, anomaly_scale,
                     anomaly_types) -> None:
  unknown = sorted(set(anomaly_types) - set(ANOMALY_TYPES))
  if unknown or not anomaly_types:
    raise DataError(f"Unknown synthetic anomaly types {unknown or '(none given)'}; set "
                    f"--config.data.synthetic.anomaly_types to a comma list of {ANOMALY_TYPES}.")
  if num_features < 1 or train_length < 1 or test_length < 1:
    raise DataError("data.synthetic.num_features, train_length and test_length must be >= 1.")
  if num_anomalies < 0 or anomaly_scale < 0:
    raise DataError("data.synthetic.num_anomalies and anomaly_scale must be >= 0.")


def _model(rng: np.random.Generator, length: int, num_features: int) -> _Model:
  wander = _ar1(rng, length, coefficient=0.998)
  trend = np.linspace(0.0, 1.0, length)
  return _Model(
      base=rng.uniform(3.0, 5.0, num_features),
      scale=np.exp(rng.uniform(0.0, np.log(100.0), num_features)),
      phases=rng.uniform(0.0, 2 * np.pi, 2),
      cycle_loadings=np.stack([rng.uniform(0.6, 1.4, num_features),
                               rng.uniform(-0.4, 0.4, num_features),
                               rng.uniform(-0.5, 0.5, num_features)], axis=1),
      slow_loadings=np.stack([rng.uniform(0.1, 0.5, num_features),
                              rng.uniform(-0.3, 0.5, num_features)], axis=1),
      slow=np.stack([wander / wander.std(), trend], axis=1),
      noise=np.stack([_ar1(rng, length, coefficient=0.6) * rng.uniform(0.08, 0.2)
                      for _ in range(num_features)], axis=1))


def _cycles(model: _Model, times: np.ndarray) -> np.ndarray:
  """(T, 3) periodic factors at (possibly fractional) times: daily, its harmonic, fast."""
  day = 2 * np.pi * times / DAY
  return np.stack([np.sin(day + model.phases[0]), np.sin(2 * day + model.phases[1]),
                   np.sin(2 * np.pi * times / FAST)], axis=1)


def _series(model: _Model, times: np.ndarray) -> np.ndarray:
  unscaled = (model.base + _cycles(model, times) @ model.cycle_loadings.T
              + model.slow[times] @ model.slow_loadings.T + model.noise[times])
  return unscaled * model.scale


def _ar1(rng: np.random.Generator, length: int, *, coefficient: float) -> np.ndarray:
  """Unit-variance AR(1) noise."""
  shocks = rng.normal(size=length) * np.sqrt(1 - coefficient**2)
  out = np.empty(length)
  out[0] = rng.normal()
  for t in range(1, length):
    out[t] = coefficient * out[t - 1] + shocks[t]
  return out


def _length(rng: np.random.Generator, kind: str, test_length: int, num_anomalies: int) -> int:
  if kind == "spike":
    return int(rng.integers(1, 4))
  budget = ANOMALY_FRACTION * test_length / num_anomalies
  low, high = _LENGTHS[kind]
  return max(2, int(round(budget * rng.uniform(low, high))))


def _place(rng: np.random.Generator, lengths: list[int], test_length: int) -> list[tuple[int, int]]:
  """Non-overlapping (start, end) spans in random places, after a short warm-up."""
  if not lengths:
    return []
  margin, gap = min(DAY, test_length // 10), max(2, test_length // 200)
  free = test_length - margin - sum(lengths) - gap * (len(lengths) - 1)
  if free < 0:
    raise DataError(f"data.synthetic.test_length={test_length} is too short for "
                    f"{len(lengths)} anomalies; raise it or lower num_anomalies.")
  spare = np.floor(rng.dirichlet(np.ones(len(lengths) + 1)) * free).astype(int)
  spans, start = [], margin
  for i, length in enumerate(lengths):
    start += spare[i]
    spans.append((start, start + length - 1))
    start += length + gap
  return spans


def _num_hit(rng: np.random.Generator, num_features: int) -> int:
  return int(rng.integers(1, max(1, num_features // 2) + 1))


def _delta(rng: np.random.Generator, kind: str, reread, times: np.ndarray,
           spread: np.ndarray) -> np.ndarray:
  """(L, k) change to k metrics at `times`, before `anomaly_scale`; `reread(new_times)` is
  the change of those metrics when read at other times."""
  length, signs = len(times), rng.choice([-1.0, 1.0], size=len(spread), p=[0.3, 0.7])
  if kind == "spike":
    return signs * rng.uniform(4.0, 7.0, len(spread)) * spread * np.ones((length, 1))
  if kind == "level_shift":
    return signs * rng.uniform(1.5, 3.0, len(spread)) * spread * np.ones((length, 1))
  if kind == "drift":
    ramp = np.linspace(0.0, 1.0, length)[:, None]
    return signs * rng.uniform(2.0, 4.0, len(spread)) * spread * ramp
  if kind == "frequency_change":
    return reread(times[0] + 3.0 * (times - times[0]))
  if kind == "correlation_break":
    return reread(times + DAY / 2)
  if kind == "noise_burst":
    return rng.normal(size=(length, len(spread))) * rng.uniform(1.0, 1.5, len(spread)) * spread
  raise DataError(f"Unknown synthetic anomaly type {kind!r}; use one of {ANOMALY_TYPES}.")


def _cycle_change(model: _Model, new_times: np.ndarray, times: np.ndarray,
                  dims: np.ndarray) -> np.ndarray:
  """How the metrics' cyclic part changes when read at `new_times` instead of `times`."""
  change = _cycles(model, new_times) - _cycles(model, times)
  return change @ model.cycle_loadings[dims].T
