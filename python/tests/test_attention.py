"""Scores, SoftMax and Sinkhorn from Python, against numpy and POT."""
import warnings

import numpy as np
import pytest

import attnflow


def cloud(n=200, d=2, seed=1, scale=0.7):
    return scale * np.random.default_rng(seed).standard_normal((n, d))


def test_scores_match_numpy_dot_l2_and_rectangular():
    X, Y = cloud(30, 3, 1), cloud(20, 3, 2)
    A = np.random.default_rng(3).standard_normal((3, 3))
    np.testing.assert_allclose(attnflow.scores(X, Y, eps=0.5, beta=2.0, A=A),
                               2.0 / 0.5 * X @ A @ Y.T, rtol=1e-13, atol=1e-13)
    D2 = ((X[:, None, :] - Y[None, :, :]) ** 2).sum(-1)
    np.testing.assert_allclose(attnflow.scores(X, Y, kind="l2", eps=0.3), -D2 / 0.6,
                               rtol=1e-12, atol=1e-12)
    C = attnflow.scores(X, eps=0.5)
    assert np.array_equal(C, C.T)  # exactly symmetric when Y is X


def test_softmax_rows_sum_to_one_and_match_numpy():
    C = attnflow.scores(cloud(50, 2), eps=0.2)
    K = attnflow.softmax(C)
    E = np.exp(C - C.max(axis=1, keepdims=True))
    np.testing.assert_allclose(K, E / E.sum(axis=1, keepdims=True), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(K.sum(axis=1), 1.0, atol=1e-14)


def test_sinkhorn_equals_pot_on_the_same_cost():
    import ot  # python3-pot, installed by the bootstrap: a missing POT fails, never skips
    n = 200
    C = attnflow.scores(cloud(n, 2), eps=1.0)
    K, diag = attnflow.sinkhorn(C, tol=1e-13, max_iters=100000)
    a = np.full(n, 1.0 / n)
    P = ot.sinkhorn(a, a, -C, 1.0, method="sinkhorn", numItermax=100000, stopThr=1e-15)
    assert diag.converged
    assert np.max(np.abs(K - n * P)) <= 1e-9


def test_alternating_sinkhorn_equals_pot_on_a_rectangular_problem():
    import ot
    n, m = 60, 40
    C = attnflow.scores(cloud(n, 2, 4), cloud(m, 2, 5), kind="l2", eps=1.0)
    K, diag = attnflow.sinkhorn(C, tol=1e-13, max_iters=100000, path="scaling")
    P = ot.sinkhorn(np.full(n, 1 / n), np.full(m, 1 / m), -C, 1.0, method="sinkhorn",
                    numItermax=100000, stopThr=1e-15)
    assert diag.path == "scaling"
    assert np.max(np.abs(K - n * P)) <= 1e-9
    np.testing.assert_allclose(K.sum(axis=0), n / m, atol=1e-11)


def test_one_normalisation_is_softmax_bit_for_bit():
    C = attnflow.scores(cloud(40, 3), eps=0.3)
    K, diag = attnflow.sinkhorn(C, iters=1)
    assert diag.iterations == 1
    assert np.array_equal(K, attnflow.softmax(C))


def test_diagnostics_potentials_errors_and_bound():
    C = attnflow.scores(cloud(100, 2), eps=0.5)
    K, diag = attnflow.sinkhorn(C, tol=1e-10, path="scaling", bound="exact")
    f, g = diag.potentials
    np.testing.assert_allclose(np.exp(f[:, None] + C + g[None, :]), K, rtol=1e-10, atol=1e-15)
    assert len(diag.errors) == diag.iterations
    assert diag.errors[-1] <= 1e-10 < diag.errors[0]
    assert diag.bound_exact and 0 < diag.bound <= 1
    # every full iteration contracts no faster than Birkhoff-Hopf allows
    full = diag.col_errors[1::2]
    assert np.all(full[1:] <= diag.bound * full[:-1] * (1 + 1e-6) + 1e-15)
    s2 = attnflow.second_singular_value(K)
    assert 0 < s2 < 1


def test_a_tolerance_not_met_warns_and_says_so():
    C = attnflow.scores(cloud(80, 2), eps=0.05)
    with pytest.warns(attnflow.ConvergenceWarning):
        K, diag = attnflow.sinkhorn(C, tol=1e-14, max_iters=3, path="scaling")
    assert not diag.converged and diag.iterations == 3


def test_errors_raise_with_the_library_message():
    C = attnflow.scores(cloud(10, 2))
    C[3, 4] = np.nan
    with pytest.raises(attnflow.Error) as e:
        attnflow.sinkhorn(C)
    assert e.value.status == "AF_EDOM"
    assert "score (3, 4) is not finite" in e.value.message  # af_last_error()
    with pytest.raises(attnflow.Error, match="eps"):
        attnflow.scores(cloud(10, 2), eps=0.0)
    with pytest.raises(attnflow.Error):
        attnflow.sinkhorn(attnflow.scores(cloud(10, 2)), tol=-1.0)
    with pytest.raises(ValueError, match="path"):
        attnflow.sinkhorn(C, path="fast")
    with pytest.raises(ValueError):
        attnflow.softmax(np.zeros(5))


def test_init_cloud_is_the_cli_cloud(cli):
    rc, out, err, d = cli("attention", "--init", "mixture", "--n", 30, "--d", 3, "--seed", 7,
                          "--iters", 1, "--out", "K.dat")
    assert rc == 0, err
    X = attnflow.init_cloud("mixture", n=30, d=3, seed=7)
    K = attnflow.load(d / "K.dat").array
    assert np.array_equal(K, attnflow.softmax(attnflow.scores(X)))
