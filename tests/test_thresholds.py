"""Tests for tsad_jax.thresholds (POT, SPOT, DSPOT, percentile, tail_p, fixed, registry)."""

import math

import ml_collections
import numpy as np
import pytest

from tsad_jax import thresholds
from tsad_jax.thresholds import gpd


def _gpd_sample(rng: np.random.Generator, gamma: float, sigma: float, n: int) -> np.ndarray:
  """n draws of GPD(gamma, sigma) by inversion."""
  u = rng.random(n)
  if gamma == 0.0:
    return -sigma * np.log1p(-u)
  return sigma / gamma * ((1.0 - u)**(-gamma) - 1.0)


def _gpd_upper_quantile(gamma: float, sigma: float, p: float) -> float:
  """The value a GPD(gamma, sigma) exceeds with probability p."""
  if gamma == 0.0:
    return -sigma * math.log(p)
  return sigma / gamma * (p**(-gamma) - 1.0)


def _gpd_log_likelihood(y: np.ndarray, gamma: float, sigma: float) -> float:
  """Direct GPD log-likelihood, -inf outside the support."""
  if sigma <= 0.0 or np.any(gamma * y / sigma <= -1.0):
    return -np.inf
  if abs(gamma) < 1e-12:
    return float(-y.size * math.log(sigma) - y.sum() / sigma)
  return float(-y.size * math.log(sigma) - (1.0 + 1.0 / gamma) * np.log1p(gamma * y / sigma).sum())


# ---------------------------------------------------------------------------
# POT.
# ---------------------------------------------------------------------------

# A GPD's excesses over any threshold t are again GPD with the same gamma and
# scale sigma + gamma * t, so POT on GPD data has an exact answer. 500k draws,
# level 0.98 (10k peaks), q = 1e-4. Tolerances are ~3 standard deviations of
# each estimate, measured over 30 seeds: z_q rel. sd 2.2 % / 1.1 % / 0.28 %,
# gamma sd <= 0.011, sigma rel. sd <= 1.6 %.
@pytest.mark.parametrize(
    "gamma, quantile_rtol",
    [
        (0.2, 0.07),  # Heavy (Pareto-like) tail.
        (0.0, 0.04),  # Exponential tail.
        (-0.25, 0.01),  # Bounded tail, endpoint sigma / 0.25 = 4.
    ])
def test_pot_recovers_gpd_tail_quantile(gamma, quantile_rtol):
  rng = np.random.default_rng(0)
  scores = _gpd_sample(rng, gamma, 1.0, 500_000)
  result = thresholds.pot(scores, q=1e-4, level=0.98)

  true_quantile = _gpd_upper_quantile(gamma, 1.0, 1e-4)
  assert result.threshold == pytest.approx(true_quantile, rel=quantile_rtol)
  assert result.gamma == pytest.approx(gamma, abs=0.04)
  true_sigma = 1.0 + gamma * result.init_threshold
  assert result.sigma == pytest.approx(true_sigma, rel=0.05)
  assert result.num_peaks == 10_000
  assert result.init_threshold == pytest.approx(_gpd_upper_quantile(gamma, 1.0, 0.02), rel=0.02)
  if gamma < 0.0:
    assert result.threshold < -1.0 / gamma  # Never beyond the support's endpoint.


def test_pot_uniform_tail_uses_gamma_minus_one_edge():
  # Uniform excesses are GPD(-1, sigma); the likelihood peaks on the edge
  # gamma = -1, sigma = max excess, where Grimshaw's equation has no root.
  rng = np.random.default_rng(0)
  scores = rng.random(200_000)
  result = thresholds.pot(scores, q=1e-4, level=0.98)
  assert result.gamma == -1.0
  assert result.threshold <= scores.max()
  assert result.threshold == pytest.approx(1.0 - 1e-4, abs=2e-4)


def test_pot_on_gaussian_scores_is_close_to_true_quantile():
  # Gaussian tails are only approximately GPD; z_q(1e-4) = 3.719.
  scores = np.random.default_rng(0).standard_normal(200_000)
  result = thresholds.pot(scores, q=1e-4, level=0.98)
  assert result.threshold == pytest.approx(3.719, rel=0.03)


@pytest.mark.parametrize("gamma", [0.3, 0.0, -0.3])
def test_fit_gpd_is_the_maximum_likelihood(gamma):
  rng = np.random.default_rng(1)
  y = _gpd_sample(rng, gamma, 2.0, 60)
  fit = thresholds.fit_gpd(y)
  assert fit.log_likelihood == pytest.approx(_gpd_log_likelihood(y, fit.gamma, fit.sigma),
                                             rel=1e-9)
  # Brute force: the best of a dense (gamma, sigma) grid is not above the fit.
  g = np.linspace(-0.95, 1.5, 246)[:, None, None]
  g = np.where(np.abs(g) < 1e-12, 1e-12, g)  # Step over gamma = 0 (the limit is continuous).
  s = np.geomspace(0.05, 20.0, 300)[None, :, None]
  z = g * y[None, None, :] / s
  with np.errstate(invalid="ignore"):
    lls = -y.size * np.log(s[..., 0]) - (1.0 + 1.0 / g[..., 0]) * np.log1p(z).sum(axis=-1)
  best = float(np.max(np.where(np.all(z > -1.0, axis=-1), lls, -np.inf)))
  assert fit.log_likelihood >= best - 1e-9
  assert fit.log_likelihood - best < 0.05  # The grid gets close: same optimum.


def test_fit_gpd_is_scale_equivariant():
  y = _gpd_sample(np.random.default_rng(2), 0.25, 1.0, 500)
  base = thresholds.fit_gpd(y)
  scaled = thresholds.fit_gpd(1e-3 * y)
  assert scaled.gamma == pytest.approx(base.gamma, abs=1e-9)
  assert scaled.sigma == pytest.approx(1e-3 * base.sigma, rel=1e-9)


def test_pot_threshold_formula():
  scores = np.random.default_rng(3).exponential(size=20_000)
  r = thresholds.pot(scores, q=1e-3, level=0.95)
  ratio = 1e-3 * scores.size / r.num_peaks
  expected = r.init_threshold + r.sigma / r.gamma * (ratio**(-r.gamma) - 1.0)
  assert r.threshold == pytest.approx(expected, rel=1e-12)
  assert r.num_peaks == np.sum(scores > r.init_threshold)


# ---------------------------------------------------------------------------
# SPOT.
# ---------------------------------------------------------------------------


def test_spot_alarm_rate_on_stationary_stream_is_close_to_q():
  # Exponential scores (exact GPD tail), 100k calibration, 25k stream, q=1e-3:
  # 25 alarms expected; Poisson sd ~20 %. Over 16 seeds the rate was
  # 1.02 q +- 0.22 q, so [0.5 q, 1.6 q] is ~2.5 sd on each side.
  rng = np.random.default_rng(0)
  calib = rng.exponential(size=100_000)
  test = rng.exponential(size=25_000)
  _, alarms = thresholds.spot(calib, test, q=1e-3, level=0.98)
  rate = alarms.mean()
  assert 0.5e-3 <= rate <= 1.6e-3


def test_spot_censoring_lowers_threshold_on_long_streams():
  # As in the paper's Algorithm 1, alarms are not added to the peaks, so the
  # tail seen by the refits is cut at z_q and z_q drifts down on a long
  # stationary stream (the alarm rate approaches ~2 q). This pins that
  # documented behaviour: a change here must be deliberate.
  rng = np.random.default_rng(0)
  calib = rng.exponential(size=10_000)
  test = rng.exponential(size=40_000)
  threshold_series, alarms = thresholds.spot(calib, test, q=1e-3, level=0.98)
  true_quantile = -math.log(1e-3)
  assert threshold_series[-1] < 0.95 * true_quantile
  assert alarms.mean() > 1.2e-3


def test_spot_huge_value_is_alarm_and_does_not_move_threshold():
  rng = np.random.default_rng(0)
  state = thresholds.spot_init(rng.standard_normal(20_000), q=1e-3, level=0.98)
  new_state, threshold_before, is_alarm = thresholds.spot_update(state, 1e6)
  assert is_alarm
  assert threshold_before == state.threshold
  assert new_state is state  # Not a peak, not counted.
  new_state, threshold_after, _ = thresholds.spot_update(new_state, 0.0)
  assert threshold_after == threshold_before
  assert new_state.num_obs == state.num_obs + 1
  assert new_state.num_peaks == state.num_peaks


def test_spot_peak_between_t_and_zq_refits():
  rng = np.random.default_rng(0)
  state = thresholds.spot_init(rng.standard_normal(20_000), q=1e-3, level=0.98)
  score = 0.5 * (state.init_threshold + state.threshold)
  new_state, threshold_before, is_alarm = thresholds.spot_update(state, score)
  assert not is_alarm
  assert threshold_before == state.threshold
  assert new_state.num_peaks == state.num_peaks + 1
  assert new_state.num_obs == state.num_obs + 1
  assert new_state.threshold != state.threshold
  assert thresholds.spot_peaks(new_state)[-1] == pytest.approx(score - state.init_threshold)
  # The refit equals POT-style fitting of all peaks with the updated counts.
  fit = thresholds.fit_gpd(thresholds.spot_peaks(new_state))
  ratio = 1e-3 * new_state.num_obs / new_state.num_peaks
  expected = state.init_threshold + fit.sigma / fit.gamma * (ratio**(-fit.gamma) - 1.0)
  assert new_state.threshold == pytest.approx(expected, rel=1e-12)


def test_spot_init_matches_pot():
  calib = np.random.default_rng(4).standard_normal(20_000)
  state = thresholds.spot_init(calib, q=1e-3, level=0.98)
  result = thresholds.pot(calib, q=1e-3, level=0.98)
  assert state.threshold == result.threshold
  assert state.init_threshold == result.init_threshold
  assert (state.gamma, state.sigma, state.num_peaks) == (result.gamma, result.sigma,
                                                         result.num_peaks)
  assert state.num_obs == calib.size


def test_spot_matches_stepwise_updates_and_predict():
  rng = np.random.default_rng(5)
  calib = rng.standard_normal(5_000)
  test = rng.standard_normal(3_000)
  test[[100, 1500]] = 8.0  # Two certain alarms.
  threshold_series, alarms = thresholds.spot(calib, test, q=1e-3, level=0.98)
  state = thresholds.spot_init(calib, q=1e-3, level=0.98)
  stepwise_thresholds, stepwise_alarms = [], []
  for score in test:
    state, threshold, alarm = thresholds.spot_update(state, score)
    stepwise_thresholds.append(threshold)
    stepwise_alarms.append(alarm)
  np.testing.assert_array_equal(threshold_series, stepwise_thresholds)
  np.testing.assert_array_equal(alarms, np.asarray(stepwise_alarms, dtype=np.uint8))
  np.testing.assert_array_equal(alarms, thresholds.predict(test, threshold_series))
  assert alarms[100] == 1 and alarms[1500] == 1
  assert alarms.dtype == np.uint8


def test_spot_old_states_stay_valid_after_branching():
  calib = np.random.default_rng(6).standard_normal(5_000)
  state = thresholds.spot_init(calib, q=1e-3, level=0.98)
  peak_a = state.init_threshold + 0.1
  peak_b = state.init_threshold + 0.2
  state_a, _, _ = thresholds.spot_update(state, peak_a)
  state_b, _, _ = thresholds.spot_update(state, peak_b)  # Branch from the older state.
  assert thresholds.spot_peaks(state_a)[-1] == pytest.approx(0.1)
  assert thresholds.spot_peaks(state_b)[-1] == pytest.approx(0.2)
  assert thresholds.spot_peaks(state).size == state.num_peaks
  np.testing.assert_array_equal(thresholds.spot_peaks(state_a)[:-1],
                                thresholds.spot_peaks(state))


# ---------------------------------------------------------------------------
# Percentile and fixed.
# ---------------------------------------------------------------------------


def test_percentile_flags_anomaly_ratio_percent():
  scores = np.arange(1.0, 1001.0)  # 1000 distinct scores.
  threshold = thresholds.percentile(scores, anomaly_ratio=0.5)  # 0.5 %, i.e. 5 scores.
  assert threshold == pytest.approx(995.005)
  assert np.sum(scores > threshold) == 5
  assert np.sum(scores > thresholds.percentile(scores, anomaly_ratio=10.0)) == 100
  assert thresholds.percentile(scores, anomaly_ratio=0.0) == 1000.0
  assert np.sum(scores > thresholds.percentile(scores, anomaly_ratio=0.0)) == 0


def test_percentile_is_order_free():
  scores = np.random.default_rng(7).permutation(np.arange(200.0))
  assert np.sum(scores > thresholds.percentile(scores, anomaly_ratio=1.0)) == 2


def test_fixed():
  assert thresholds.fixed(0.25) == 0.25
  np.testing.assert_array_equal(thresholds.predict([0.1, 0.25, 0.3], thresholds.fixed(0.25)),
                                [0, 0, 1])


# ---------------------------------------------------------------------------
# Registry and predict.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("make_options", [dict, ml_collections.ConfigDict])
def test_compute_by_name(make_options):
  rng = np.random.default_rng(8)
  calib = rng.standard_normal(10_000)
  test = rng.standard_normal(2_000)
  options = make_options(
      dict(pot_q=1e-3, pot_level=0.98, anomaly_ratio=1.0, fixed_value=2.5))

  pot_threshold = thresholds.compute("pot", calib_scores=calib, options=options)
  assert pot_threshold.shape == ()
  assert float(pot_threshold) == thresholds.pot(calib, q=1e-3, level=0.98).threshold

  spot_thresholds = thresholds.compute("spot", calib_scores=calib, test_scores=test,
                                       options=options)
  assert spot_thresholds.shape == test.shape
  np.testing.assert_array_equal(spot_thresholds, thresholds.spot(calib, test)[0])

  percentile_threshold = thresholds.compute("percentile", calib_scores=calib, options=options)
  assert float(percentile_threshold) == np.percentile(calib, 99.0)

  fixed_threshold = thresholds.compute("fixed", options=options)
  assert float(fixed_threshold) == 2.5

  dspot_thresholds = thresholds.compute("dspot", calib_scores=calib, test_scores=test,
                                        options=options)
  np.testing.assert_array_equal(dspot_thresholds, thresholds.dspot(calib, test, depth=10)[0])

  tail_threshold = thresholds.compute("tail_p", options={"tail_probability": 1e-6})
  assert float(tail_threshold) == pytest.approx(6 * math.log(10))

  for threshold in (pot_threshold, spot_thresholds, percentile_threshold, fixed_threshold,
                    dspot_thresholds, tail_threshold):
    preds = thresholds.predict(test, threshold)
    assert preds.dtype == np.uint8 and preds.shape == test.shape
  assert set(thresholds.REGISTRY) == {"pot", "spot", "dspot", "percentile", "tail_p", "fixed"}


def test_compute_defaults_for_pot_options():
  calib = np.random.default_rng(9).standard_normal(10_000)
  got = thresholds.compute("pot", calib_scores=calib, options={})
  assert float(got) == thresholds.pot(calib, q=1e-3, level=0.98).threshold


def test_compute_errors():
  calib = np.random.default_rng(10).standard_normal(1_000)
  with pytest.raises(ValueError, match="Unknown threshold method 'best_f1'"):
    thresholds.compute("best_f1", calib_scores=calib)
  with pytest.raises(ValueError, match="'anomaly_ratio'"):
    thresholds.compute("percentile", calib_scores=calib, options={"anomaly_ratio": None})
  with pytest.raises(ValueError, match="'fixed_value'"):
    thresholds.compute("fixed", options=ml_collections.ConfigDict())
  with pytest.raises(ValueError, match="needs test_scores"):
    thresholds.compute("spot", calib_scores=calib)
  with pytest.raises(ValueError, match="needs calib_scores"):
    thresholds.compute("pot")


def test_predict_checks_shapes():
  with pytest.raises(ValueError, match="scalar or have the scores' shape"):
    thresholds.predict(np.zeros(5), np.zeros(4))
  with pytest.raises(ValueError, match="NaN/inf"):
    thresholds.predict(np.zeros(3), np.array([0.0, np.nan, 0.0]))
  np.testing.assert_array_equal(thresholds.predict([1.0, 2.0, 3.0], [0.5, 2.0, 3.5]), [1, 0, 0])


# ---------------------------------------------------------------------------
# Bad inputs.
# ---------------------------------------------------------------------------

_GOOD = np.random.default_rng(11).standard_normal(5_000)


@pytest.mark.parametrize("fn", [
    lambda s: thresholds.pot(s),
    lambda s: thresholds.spot_init(s),
    lambda s: thresholds.percentile(s, anomaly_ratio=1.0),
])
def test_bad_scores_raise(fn):
  with pytest.raises(ValueError, match=r"NaN/inf value\(s\) \(first at index 3"):
    fn(np.array([0.0, 1.0, 2.0, np.nan] + [0.5] * 100))
  with pytest.raises(ValueError, match="NaN/inf"):
    fn(np.concatenate([_GOOD, [np.inf]]))
  with pytest.raises(ValueError, match="empty"):
    fn(np.array([]))
  with pytest.raises(ValueError, match="1-D"):
    fn(np.zeros((10, 2)))


@pytest.mark.parametrize("q", [0.0, 1.0, -1e-3, 1.5, float("nan")])
def test_q_out_of_range_raises(q):
  with pytest.raises(ValueError, match=r"q must be in the open interval \(0, 1\)"):
    thresholds.pot(_GOOD, q=q)
  with pytest.raises(ValueError, match=r"q must be in the open interval \(0, 1\)"):
    thresholds.spot(_GOOD, _GOOD, q=q)


@pytest.mark.parametrize("level", [0.0, 1.0, 98.0, -0.5])
def test_level_out_of_range_raises(level):
  with pytest.raises(ValueError, match=r"level must be in the open interval \(0, 1\)"):
    thresholds.pot(_GOOD, level=level)


def test_too_few_peaks_raises():
  with pytest.raises(ValueError, match=r"Too few peaks.*2 of 100 calibration scores"):
    thresholds.pot(np.arange(100.0), q=1e-3, level=0.98)
  with pytest.raises(ValueError, match="Too few peaks"):
    thresholds.pot(np.concatenate([np.zeros(1000), np.ones(5)]), q=1e-4, level=0.9)
  with pytest.raises(ValueError, match="Too few peaks"):
    thresholds.fit_gpd(np.ones(3))


def test_q_not_below_peak_fraction_raises():
  with pytest.raises(ValueError, match="not below the fraction of peaks"):
    thresholds.pot(_GOOD, q=0.05, level=0.98)


def test_bad_spot_update_and_other_options_raise():
  state = thresholds.spot_init(_GOOD)
  with pytest.raises(ValueError, match="non-finite score"):
    thresholds.spot_update(state, float("nan"))
  with pytest.raises(ValueError, match="NaN/inf"):
    thresholds.spot(_GOOD, np.array([0.0, np.inf]))
  with pytest.raises(ValueError, match=r"percentage in \[0, 100\)"):
    thresholds.percentile(_GOOD, anomaly_ratio=100.0)
  with pytest.raises(ValueError, match=r"percentage in \[0, 100\)"):
    thresholds.percentile(_GOOD, anomaly_ratio=-0.5)
  with pytest.raises(ValueError, match="must be finite"):
    thresholds.fixed(float("inf"))


# ---------------------------------------------------------------------------
# DSPOT and the tail-probability threshold.
# ---------------------------------------------------------------------------


def test_dspot_calibrates_on_residuals_from_the_local_mean():
  """Depth 2 by hand: each residual is the score minus the mean of the two before it."""
  rng = np.random.default_rng(20)
  calib = rng.standard_normal(2_000).cumsum() * 0.01 + rng.standard_normal(2_000)
  state = thresholds.dspot_init(calib, q=1e-3, level=0.98, depth=2)
  residuals = np.array([calib[i] - (calib[i - 1] + calib[i - 2]) / 2 for i in range(2, 2_000)])
  reference = thresholds.spot_init(residuals, q=1e-3, level=0.98)
  assert state.spot.threshold == pytest.approx(reference.threshold, rel=1e-12)
  assert state.spot.num_obs == 1_998 and state.spot.num_peaks == reference.num_peaks
  np.testing.assert_array_equal(state.window, calib[-2:])


def test_dspot_follows_a_drift_that_spot_alarms_on():
  rng = np.random.default_rng(21)
  calib = rng.standard_normal(5_000)
  drift = np.linspace(0.0, 40.0, 4_000) + rng.standard_normal(4_000)
  _, spot_alarms = thresholds.spot(calib, drift)
  _, dspot_alarms = thresholds.dspot(calib, drift, depth=20)
  assert spot_alarms.mean() > 0.5  # the drifted level alone looks anomalous to SPOT
  assert dspot_alarms.mean() < 0.01  # DSPOT reads the score against its local mean
  spiked = drift.copy()
  spiked[3_000] += 30.0
  _, alarms = thresholds.dspot(calib, spiked, depth=20)
  assert alarms[3_000] == 1


def test_dspot_alarms_stay_out_of_the_window_and_the_stream_matches_updates():
  rng = np.random.default_rng(22)
  calib, test = rng.standard_normal(3_000), rng.standard_normal(1_000)
  test[500] = 50.0
  state = thresholds.dspot_init(calib, depth=5)
  stepwise, alarms = [], []
  for score in test:
    before = state.window.copy()
    state, threshold, alarm = thresholds.dspot_update(state, score)
    stepwise.append(threshold)
    alarms.append(alarm)
    if alarm:
      np.testing.assert_array_equal(state.window, before)
    else:
      assert state.window[-1] == score
  assert alarms[500]
  whole, whole_alarms = thresholds.dspot(calib, test, depth=5)
  np.testing.assert_array_equal(whole, stepwise)
  np.testing.assert_array_equal(whole_alarms, alarms)


def test_dspot_relearns_a_lasting_level_after_relearn_alarms_in_a_row():
  """A +20 shift of unit noise for good at 200, depth 20, relearn 30: alarms 200-229 stay out of
  the window, from 230 on the shifted scores enter it, and the residual 20 - 20 k / 20 after k
  of them falls below the threshold (about 3.3) near k = 17: one event of about 48 scores."""
  rng = np.random.default_rng(23)
  calib, test = rng.standard_normal(5_000), rng.standard_normal(1_000)
  test[200:] += 20.0
  _, stuck = thresholds.dspot(calib, test, depth=20)
  assert stuck[200:].all()  # Siffer et al.'s DSPOT never takes the new level in
  _, alarms = thresholds.dspot(calib, test, depth=20, relearn=30)
  alarmed = np.flatnonzero(alarms[:300])
  assert alarmed[0] == 200 and np.all(np.diff(alarmed) == 1)
  assert 200 + 30 + 10 <= alarmed[-1] <= 200 + 30 + 20
  assert alarms[300:].mean() < 0.01
  state = thresholds.dspot_init(calib, depth=20, relearn=2)
  windows = []
  for score in (30.0, 30.0, 30.0):
    state, _, alarm = thresholds.dspot_update(state, score)
    assert alarm
    windows.append(state.window[-1])
  assert windows[0] != 30.0 and windows[1] != 30.0 and windows[2] == 30.0
  assert state.alarm_run == 3


def test_dspot_refuses_a_bad_depth():
  with pytest.raises(ValueError, match="depth must be a positive integer"):
    thresholds.dspot_init(np.ones(100), depth=0)
  with pytest.raises(ValueError, match="needs more than 100 calibration scores"):
    thresholds.dspot_init(np.arange(100.0), depth=100)
  with pytest.raises(ValueError, match=r"dspot_relearn\) must be a non-negative integer"):
    thresholds.dspot_init(np.ones(100), depth=5, relearn=-1)


def test_tail_p_flags_a_joint_tail_probability_below_the_level():
  """Two features with tail probabilities 1e-3 and 1e-4 multiply to 1e-7 < 1e-6: an alarm;
  1e-3 and 1e-2 make 1e-5: none."""
  level = thresholds.tail_p(1e-6)
  scores = np.array([-math.log(1e-3) - math.log(1e-4), -math.log(1e-3) - math.log(1e-2)])
  np.testing.assert_array_equal(thresholds.predict(scores, level), [1, 0])
  with pytest.raises(ValueError, match="tail_probability must be in the open interval"):
    thresholds.tail_p(1.0)


def test_kept_grid_sums_give_the_fit_of_sums_built_afresh():
  rng = np.random.default_rng(5)
  excesses = _gpd_sample(rng, 0.2, 1.0, 300)
  sums = gpd.grid_sums(excesses[:100])
  for end in range(101, 301):  # one new excess at a time, as SPOT's refits
    sums = gpd.add_excess(sums, excesses[:end])
  fresh = gpd.grid_sums(excesses)
  np.testing.assert_array_equal(sums.grid, fresh.grid)  # the grid follows the extremes
  np.testing.assert_allclose(sums.inverse, fresh.inverse, rtol=1e-12)
  np.testing.assert_allclose(sums.log, fresh.log, rtol=1e-12, atol=1e-9)
  kept, afresh = gpd.fit_gpd(excesses, sums), gpd.fit_gpd(excesses)
  assert kept.gamma == pytest.approx(afresh.gamma, rel=1e-9)
  assert kept.sigma == pytest.approx(afresh.sigma, rel=1e-9)
  # A new largest excess moves the grid: the sums are rebuilt for it.
  grown = np.append(excesses, 10 * excesses.max())
  moved = gpd.add_excess(sums, grown)
  assert moved.largest == grown.max()
  np.testing.assert_array_equal(moved.grid, gpd.grid_sums(grown).grid)


def test_a_spot_state_without_grid_sums_refits_as_one_with_them():
  # States pickled before the sums were kept (state.pkl of a detect job) resume alike.
  rng = np.random.default_rng(6)
  state = thresholds.spot_init(rng.standard_normal(5_000), q=1e-3, level=0.95)
  old = state._replace(sums=None)
  stream = rng.standard_normal(2_000)
  for score in stream:
    state, level, alarm = thresholds.spot_update(state, score)
    old, old_level, old_alarm = thresholds.spot_update(old, score)
    assert alarm == old_alarm and level == pytest.approx(old_level, rel=1e-9)
  assert state.num_peaks > 100  # the stream added peaks, each refitted
