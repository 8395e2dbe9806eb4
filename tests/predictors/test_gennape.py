"""GENNAPE's parts against their equations, and the predictor's contracts: saved and loaded alike, a network's
prediction independent of its batch, honest about families it has not seen, better after fine-tuning."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from hwnas.predictors import OutsideDomainWarning, get_predictor, load
from hwnas.predictors.gennape.clusters import FlopsTransform, SoftClusters
from hwnas.predictors.gennape.contrastive import positive_weights, weighted_contrastive_loss
from hwnas.predictors.gennape.heads import HeadStack, Regressor, shift_output
from hwnas.predictors.gennape.spectral import laplacian_spectrum
from hwnas.predictors.samples import Samples, graph_array
from tests.conftest import SMALL_GENNAPE


def _path(n: int) -> np.ndarray:
    return np.array([list(range(n - 1)), list(range(1, n))])


def test_the_spectrum_of_a_path_is_its_known_closed_form() -> None:
    # normalised Laplacian of the path P_n: 1 - cos(pi k / (n - 1)), k = 0..n-1
    n = 30
    expected = np.sort(1 - np.cos(np.pi * np.arange(n) / (n - 1)))[:21]
    assert np.allclose(laplacian_spectrum(_path(n), n), expected, atol=1e-9)


def test_the_spectrum_ignores_direction_and_repeats_and_pads_small_graphs() -> None:
    edges = _path(5)
    both = np.concatenate([edges, edges[::-1], edges], axis=1)
    small = laplacian_spectrum(edges, 5)
    assert np.allclose(small, laplacian_spectrum(both, 5))
    assert small.shape == (21,) and np.all(small[5:] == 1.0) and small[0] == pytest.approx(0.0, abs=1e-12)


def test_the_sparse_solver_agrees_with_the_dense_one(monkeypatch: pytest.MonkeyPatch) -> None:
    from hwnas.predictors.gennape import spectral

    rng = np.random.default_rng(0)
    n = 60
    edges = np.concatenate([_path(n), rng.integers(0, n, (2, 40))], axis=1)
    dense = spectral.laplacian_spectrum(edges, n)
    monkeypatch.setattr(spectral, "DENSE_LIMIT", 10)
    assert np.allclose(spectral.laplacian_spectrum(edges, n), dense, atol=1e-6)


def test_with_the_twin_as_only_positive_the_loss_is_simclr() -> None:
    torch.manual_seed(0)
    n = 4
    z = torch.nn.functional.normalize(torch.randn(2 * n, 8), dim=1)
    twin = torch.zeros(2 * n, 2 * n)
    twin[torch.arange(2 * n), (torch.arange(2 * n) + n) % (2 * n)] = 1.0
    expected = 0.0
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        others = [r for r in range(2 * n) if r != i]
        expected -= float(torch.log(torch.exp(z[i] @ z[j] / 0.5) / torch.exp(z[i] @ z[others].T / 0.5).sum()))
    assert float(weighted_contrastive_loss(z, twin, 0.5)) == pytest.approx(expected / (2 * n), rel=1e-5)


def test_positive_weights_favour_the_own_copy_then_spectral_neighbours() -> None:
    spectra = torch.tensor([[0.0, 0.1], [0.0, 0.2], [0.0, 2.0]])
    alpha = positive_weights(spectra, 0.1)
    assert torch.allclose(alpha.sum(1), torch.ones(6)) and torch.all(alpha.diagonal() == 0)
    assert alpha[0].argmax() == 3  # graph 0's own copy
    assert alpha[0, 1] > alpha[0, 2]  # the nearer spectrum weighs more


def test_the_flops_transform_is_equation_5_and_inverts() -> None:
    accuracy, macs = np.array([90.0, 70.0, 80.0]), np.array([5e8, 1e8, 3e8])
    transform = FlopsTransform.fit(accuracy, macs)
    ratio = accuracy / (np.log10(2 * macs / 1e9 + 1) + 1)
    assert np.allclose(transform.forward(accuracy, macs), (ratio - ratio.mean()) / ratio.std())
    assert np.allclose(transform.inverse(transform.forward(accuracy, macs), macs), accuracy)


def test_memberships_sum_to_one_and_follow_the_nearest_centroid() -> None:
    rng = np.random.default_rng(0)
    centres = np.array([[0.0] * 4, [10.0] * 4, [-10.0, 10.0, -10.0, 10.0]])
    points = np.concatenate([c + rng.normal(0, 0.5, (40, 4)) for c in centres])
    flops = np.full(len(points), 8.0) + rng.normal(0, 0.01, len(points))
    clusters = SoftClusters.fit(points, flops, clusters=3, fuzziness=2.0, components=3)
    u = clusters.memberships(points, flops)
    assert np.allclose(u.sum(1), 1.0)
    labels = u.argmax(1)
    assert all(len(set(labels[k * 40:(k + 1) * 40])) == 1 for k in range(3))  # each blob is one cluster
    assert len(set(labels)) == 3
    new = clusters.memberships(centres[1:2] + 0.1, np.array([8.0]))
    assert new[0].max() > 0.9 and new[0].argmax() == labels[40]


def test_stacked_heads_are_independent_mlps() -> None:
    torch.manual_seed(0)
    stack = HeadStack(3, 5, 7, 2, 2)
    h = torch.randn(4, 5)
    out = stack(h)
    assert out.shape == (4, 3, 2)
    for j in range(3):
        x = h
        for k, (w, b) in enumerate(zip(stack.weights, stack.biases, strict=True)):
            x = x @ w[j] + b[j, 0]
            x = torch.relu(x) if k < 2 else x
        assert torch.allclose(out[:, j], x, atol=1e-6)


def test_the_fine_tuning_shift_moves_the_mean_and_keeps_the_order() -> None:
    torch.manual_seed(0)
    regressor = Regressor(4, 6, 8, 2)
    h, u = torch.randn(20, 6), torch.softmax(torch.randn(20, 4), dim=1)
    with torch.no_grad():
        before = regressor(h, u).numpy()
    target = np.linspace(-7, -5, 20)
    shift_output(regressor.heads.biases[-1], before, target)
    with torch.no_grad():
        after = regressor(h, u).numpy()
    assert after.mean() == pytest.approx(target.mean(), abs=1e-5)
    assert np.allclose(after - before, target.mean() - before.mean(), atol=1e-5)


# ---- the predictor on real computation graphs -----------------------------------------------------------------
def _family(space_name: str, n: int, seed: int = 0) -> Samples:
    from hwnas.controller.learning.families import load_family

    return load_family(space_name, n, seed).samples


@pytest.fixture(scope="module")
def pretrained(small_gennape):
    return load(small_gennape)


def test_a_saved_gennape_predicts_exactly_as_before(pretrained, tmp_path) -> None:
    other = _family("nas-bench-macro", 30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutsideDomainWarning)
        before = pretrained.predict(other)
        after = load(pretrained.save(tmp_path / "g")).predict(other)
    assert np.allclose(before, after, atol=1e-4)
    assert np.all((before >= 0) & (before <= 100))


def test_a_networks_prediction_does_not_depend_on_its_batch(pretrained) -> None:
    family = _family("nb201", 40, seed=5)
    alone = pretrained.predict(family.take(np.arange(3)))
    together = pretrained.predict(family)
    assert np.allclose(alone, together[:3], atol=1e-6)


def test_fine_tuning_vouches_for_the_new_family_and_ranks_it_better(pretrained) -> None:
    import copy

    from scipy import stats

    family = _family("nas-bench-macro", 150, seed=1)
    tune, rest = family.take(np.arange(50)), family.take(np.arange(50, 150))
    with pytest.warns(OutsideDomainWarning, match="nas-bench-macro"):
        zero = pretrained.predict(rest)
    tuned = copy.deepcopy(pretrained).finetune(tune)
    assert "nas-bench-macro" in tuned.card.domain["families"] and "fine-tuned on 50" in tuned.card.notes
    assert not np.allclose(tuned.weights, pretrained.weights)  # Kendall-tau weights replace the equal ones
    assert tuned.weights.sum() == pytest.approx(1.0)
    rho_zero = stats.spearmanr(zero, rest.y).statistic
    rho_tuned = stats.spearmanr(tuned.predict(rest), rest.y).statistic
    assert rho_tuned > max(rho_zero, 0.5)


def test_gennape_needs_graphs_and_flops() -> None:
    with pytest.raises(ValueError, match="flops"):
        get_predictor("gennape", **SMALL_GENNAPE).fit(Samples(graphs=graph_array([(np.ones((2, 3), np.float32),
                                                                            np.array([[0], [1]]))] * 3),
                                                      y=np.ones(3)))
