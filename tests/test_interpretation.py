"""OmniAnomaly's interpretation metrics, HitRate@P% and NDCG@P%, against hand-worked values."""

import math

import numpy as np
import pytest

from configs import tiny
from tsad_jax import baselines
from tsad_jax import metric_summary
from tsad_jax import metrics
from tsad_jax.data import load
from tsad_jax.data import smd
from tsad_jax.data.types import Segment

C = 1 / math.log2(3)  # gain of rank 2; rank 1 gains 1, rank 3 gains 1 / log2(4) = 0.5
IDEAL_2 = 1 + C  # ideal DCG with two relevant features
IDEAL_3 = 1 + C + 0.5


def _reference(scores, segments, percent):
  """A plain loop over timesteps, for comparison with the vectorised code."""
  hits, ndcgs = [], []
  for t in range(scores.shape[0]):
    truth = set()
    for s in segments:
      if s.start <= t <= s.end:
        truth.update(s.dims)
    if not truth:
      continue
    ranked = sorted(range(scores.shape[1]), key=lambda d: (-scores[t, d], d))
    k = min(math.floor(percent * len(truth) / 100), scores.shape[1])
    top = ranked[:k]
    hits.append(len(truth.intersection(top)) / len(truth))
    dcg = sum(1 / math.log2(r + 2) for r, d in enumerate(top) if d in truth)
    ideal = sum(1 / math.log2(r + 2) for r in range(min(k, len(truth))))
    ndcgs.append(dcg / ideal if ideal else 0.0)
  return np.mean(hits), np.mean(ndcgs)


def test_perfect_ranking_scores_one_everywhere():
  rng = np.random.default_rng(0)
  scores = rng.uniform(size=(50, 6))
  segments = (Segment(3, 9, (1, 4)), Segment(20, 20, (0,)), Segment(30, 41, (0, 2, 3, 5)))
  for s in segments:
    scores[s.start:s.end + 1, list(s.dims)] += 10.0
  out = metrics.interpretation(scores, segments)
  assert out == {"HitRate@100%": 1.0, "HitRate@150%": 1.0, "NDCG@100%": 1.0,
                 "NDCG@150%": 1.0, "timesteps": 7 + 1 + 12}


def test_partial_ranking_by_hand_and_ignored_timesteps():
  segments = (Segment(1, 2, (1, 2)), Segment(4, 4, ()))  # G = {1, 2} at t = 1 and t = 2 only
  scores = np.array([
      [0.0, 9.0, 9.0, 0.0],  # t=0: outside every segment, ignored (would be perfect)
      # t=1: ranks f0, f2, f3, f1. 100%: k=2, top {0, 2}: hit 1/2, DCG = C (rank 2),
      #      NDCG = C / (1 + C). 150%: k=3, top {0, 2, 3}: the same hit and NDCG.
      [0.9, 0.1, 0.5, 0.3],
      # t=2: ranks f2, f0, f1, f3. 100%: k=2, top {2, 0}: hit 1/2, DCG = 1, NDCG = 1 / (1 + C).
      #      150%: k=3, top {2, 0, 1}: hit 1, DCG = 1 + 1/log2(4) = 1.5, NDCG = 1.5 / (1 + C).
      [0.3, 0.2, 0.9, 0.05],
      [0.0, 9.0, 9.0, 0.0],  # t=3: outside, ignored
      [9.0, 0.0, 0.0, 0.0],  # t=4: in a segment without dims, ignored
  ])
  out = metrics.interpretation(scores, segments)
  assert out["timesteps"] == 2
  assert out["HitRate@100%"] == pytest.approx(0.5)  # (1/2 + 1/2) / 2
  assert out["HitRate@150%"] == pytest.approx(0.75)  # (1/2 + 1) / 2
  assert out["NDCG@100%"] == pytest.approx(0.5)  # (C + 1) / (1 + C) / 2
  assert out["NDCG@150%"] == pytest.approx((C + 1.5) / IDEAL_2 / 2)  # 0.6533
  assert out["NDCG@150%"] == pytest.approx(0.65328, abs=1e-5)
  assert list(out) == ["HitRate@100%", "HitRate@150%", "NDCG@100%", "NDCG@150%", "timesteps"]
  each = metrics.interpretation_per_timestep(scores, segments)
  np.testing.assert_array_equal(each["timestep"], [1, 2])
  np.testing.assert_allclose(each["NDCG@100%"], [C / IDEAL_2, 1 / IDEAL_2])


def test_k_is_rounded_down_at_150_percent():
  # |G| = 1: k = floor(1.5) = 1. The relevant f0 ranks second, so nothing is hit
  # (rounding to nearest, k = 2, would hit it).
  out = metrics.interpretation(np.array([[0.5, 0.9, 0.1]]), [Segment(0, 0, (0,))],
                               percents=(150,))
  assert out == {"HitRate@150%": 0.0, "NDCG@150%": 0.0, "timesteps": 1}
  # |G| = 3: k = floor(4.5) = 4. Ranks f0, f1, f3, f4, f2, f5: f2 is fifth and missed.
  # Hit 2/3; DCG = 1 + C over an ideal 1 + C + 1/2 (min(k, |G|) = 3 relevant at the top).
  scores = np.array([[0.9, 0.8, 0.55, 0.7, 0.6, 0.5]])
  out = metrics.interpretation(scores, [Segment(0, 0, (0, 1, 2))])
  assert out["HitRate@150%"] == pytest.approx(2 / 3)
  assert out["NDCG@150%"] == pytest.approx(IDEAL_2 / IDEAL_3)
  # At 100% k = 3: top {0, 1, 3}, the same hit and DCG.
  assert out["HitRate@100%"] == pytest.approx(2 / 3)
  assert out["NDCG@100%"] == pytest.approx(IDEAL_2 / IDEAL_3)
  # At P = 167, k = floor(5.01) = 5 reaches f2.
  assert metrics.interpretation(scores, [Segment(0, 0, (0, 1, 2))],
                                percents=(167,))["HitRate@167%"] == 1.0


def test_k_is_capped_at_the_number_of_features():
  # |G| = D = 2 at 150%: k = 3 > 2 features, so every feature is retrieved.
  out = metrics.interpretation(np.array([[0.1, 0.2]]), [Segment(0, 0, (0, 1))])
  assert out["HitRate@150%"] == 1.0 and out["NDCG@150%"] == pytest.approx(1.0)


def test_ties_go_to_the_lower_feature_index():
  scores = np.ones((1, 5))
  assert metrics.interpretation(scores, [Segment(0, 0, (0,))])["HitRate@100%"] == 1.0
  assert metrics.interpretation(scores, [Segment(0, 0, (4,))])["HitRate@100%"] == 0.0
  # Ties among some: f1, f3 and f4 share the top score; f3 comes second.
  scores = np.array([[0.0, 2.0, 1.0, 2.0, 2.0]])
  out = metrics.interpretation(scores, [Segment(0, 0, (3,))])
  assert out["HitRate@100%"] == 0.0 and out["HitRate@150%"] == 0.0
  assert metrics.interpretation_per_timestep(scores.astype(np.int32), [Segment(0, 0, (1, 3))],
                                             percents=(100,))["HitRate@100%"][0] == 1.0


def test_overlapping_segments_use_the_union_of_their_dims():
  scores = np.array([[3.0, 2.0, 1.0, 0.0]])
  out = metrics.interpretation(scores, [Segment(0, 0, (0,)), Segment(0, 0, (1,))])
  assert out["HitRate@100%"] == 1.0  # G = {0, 1}, k = 2


def test_matches_a_plain_loop_on_random_cases():
  rng = np.random.default_rng(1)
  for _ in range(20):
    length, width = 60, int(rng.integers(2, 9))
    scores = rng.integers(0, 4, size=(length, width)).astype(float)  # many ties
    segments = []
    for start in range(0, length - 5, 7):
      size = int(rng.integers(0, width + 1))
      dims = tuple(sorted(rng.choice(width, size, replace=False).tolist()))
      segments.append(Segment(start, start + int(rng.integers(0, 5)), dims))
    if not any(s.dims for s in segments):
      continue
    for percent in (100, 150, 50, 220):
      out = metrics.interpretation(scores, segments, percents=(percent,))
      hit, ndcg = _reference(scores, segments, percent)
      assert out[f"HitRate@{percent}%"] == pytest.approx(hit)
      assert out[f"NDCG@{percent}%"] == pytest.approx(ndcg)


def test_no_explaining_dims_gives_none():
  scores = np.zeros((10, 3))
  assert metrics.interpretation(scores, []) is None
  assert metrics.interpretation(scores, [Segment(2, 4), Segment(6, 6, ())]) is None
  assert len(metrics.interpretation_per_timestep(scores, [])["timestep"]) == 0


def test_synthetic_segments_carry_dims_that_a_zscore_ranks_high():
  dataset = load(tiny.get_config().data)
  entity = dataset.entities[0]
  per_feature = baselines.zscore(entity.train)(entity.test)
  out = metric_summary.interpretation([entity.name], [per_feature], [entity.segments])
  assert out["pooled"]["timesteps"] == sum(s.end - s.start + 1 for s in entity.segments if s.dims)
  assert out["mean"]["entities"] == 1
  assert 0.0 < out["mean"]["HitRate@100%"] <= out["mean"]["HitRate@150%"] <= 1.0


@pytest.mark.parametrize("scores, match", [
    (np.array([[0.0, np.nan], [1.0, 1.0]]), r"finite.*\[0, 1\] = nan"),
    (np.array([[0.0, 1.0], [np.inf, 1.0]]), "finite"),
    (np.zeros(4), r"\(T, D\)"),
    (np.array([["a", "b"]]), "real numbers"),
])
def test_bad_scores_are_refused(scores, match):
  with pytest.raises(ValueError, match=match):
    metrics.interpretation(scores, [Segment(0, 0, (0,))])


def test_bad_segments_and_percents_are_refused():
  scores = np.zeros((5, 3))
  with pytest.raises(ValueError, match="outside the 5 timesteps"):
    metrics.interpretation(scores, [Segment(3, 5, (0,))])
  with pytest.raises(ValueError, match="3 features"):
    metrics.interpretation(scores, [Segment(0, 1, (3,))])
  with pytest.raises(ValueError, match="positive"):
    metrics.interpretation(scores, [Segment(0, 1, (0,))], percents=(0,))
  with pytest.raises(ValueError, match="repeated"):
    metrics.interpretation(scores, [Segment(0, 1, (0,))], percents=(100, 100.0))


# --- metric_summary.interpretation: per entity, mean over entities, pooled over timesteps ---


def test_mean_over_entities_and_pooled_over_timesteps():
  # Entity a: one labelled timestep, the relevant f1 ranked second of two: hit 0 at 100%.
  # At 150% k = 1 too (floor 1.5), still 0. NDCG 0 at both.
  a = (np.array([[0.9, 0.1], [0.0, 0.0]]), (Segment(0, 0, (1,)),))
  # Entity b: three labelled timesteps, all perfectly ranked: 1 everywhere.
  b = (np.array([[0.0, 1.0, 0.5]] * 4), (Segment(1, 3, (1, 2)),))
  # Entity c: no explaining dims; left out of the mean and of the pool.
  c = (np.ones((3, 2)), (Segment(0, 2),))
  out = metric_summary.interpretation(["a", "b", "c"], [a[0], b[0], c[0]], [a[1], b[1], c[1]])
  assert set(out["per_entity"]) == {"a", "b"}
  assert out["per_entity"]["a"]["HitRate@100%"] == 0.0
  assert out["per_entity"]["b"]["timesteps"] == 3
  for key in ("HitRate@100%", "HitRate@150%", "NDCG@100%", "NDCG@150%"):
    assert out["mean"][key] == pytest.approx(0.5)  # (0 + 1) / 2 entities
    assert out["pooled"][key] == pytest.approx(0.75)  # (0 + 3 * 1) / 4 timesteps
  assert out["mean"]["entities"] == 2
  assert out["pooled"]["timesteps"] == 4


def test_pooled_equals_the_mean_over_concatenated_timesteps():
  rng = np.random.default_rng(2)
  scores = [rng.uniform(size=(40, 5)), rng.uniform(size=(30, 5))]
  segments = [(Segment(2, 9, (0, 3)), Segment(20, 24, (1,))), (Segment(5, 25, (2, 3, 4)),)]
  out = metric_summary.interpretation(["x", "y"], scores, segments)
  shifted = segments[0] + tuple(s._replace(start=s.start + 40, end=s.end + 40)
                                for s in segments[1])
  together = metrics.interpretation(np.concatenate(scores), shifted)
  assert out["pooled"] == pytest.approx(together)


def test_single_entity_has_no_per_entity_and_none_without_dims():
  scores, segments = np.array([[1.0, 0.0]]), (Segment(0, 0, (0,)),)
  out = metric_summary.interpretation(["x"], [scores], [segments])
  assert "per_entity" not in out
  assert out["mean"]["HitRate@100%"] == out["pooled"]["HitRate@100%"] == 1.0
  assert metric_summary.interpretation(["x", "y"], [scores, scores],
                                       [(Segment(0, 0),), ()]) is None


# --- real SMD: the loader's dims against a cheap per-feature score ---


def test_zscore_on_real_smd_machine(data_root):
  root = data_root / "ServerMachineDataset"
  entity = smd.load_machine(root, "machine-1-6")
  per_feature = baselines.zscore(entity.train)(entity.test)
  out = metrics.interpretation(per_feature, entity.segments)
  labelled = sum(s.end - s.start + 1 for s in entity.segments if s.dims)
  assert out["timesteps"] == labelled > 0
  for key in ("HitRate@100%", "HitRate@150%", "NDCG@100%", "NDCG@150%"):
    assert 0.0 < out[key] <= 1.0
  assert out["HitRate@150%"] >= out["HitRate@100%"]
  # A random ranking does much worse than the z-score's.
  shuffled = np.random.default_rng(0).permuted(per_feature, axis=1)
  assert metrics.interpretation(shuffled, entity.segments)["HitRate@100%"] < out["HitRate@100%"]
