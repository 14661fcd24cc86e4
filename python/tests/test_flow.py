"""Flows from Python: the CLI's trajectory bit for bit, observables, errors."""
import numpy as np
import pytest

import attnflow


def run_cli_flow(cli, *args):
    rc, out, err, d = cli("flow", "--quiet", "--out", "traj.dat", "--observables", "obs.dat", *args)
    assert rc == 0, err
    return attnflow.load(d / "traj.dat"), attnflow.load(d / "obs.dat")


@pytest.mark.parametrize("opts", [
    dict(norm="sinkhorn", integrator="rk4"),
    dict(norm="softmax", integrator="heun", scores="l2", eps=0.5, skip=True, value=-2.0),
    dict(norm="softmax", geometry="sphere", beta=4.0, integrator="euler"),
])
def test_flow_from_python_equals_the_cli_trajectory_bit_for_bit(cli, opts):
    n, d, seed, T, dt, every = 40, 3, 5, 0.1, 0.01, 3
    args = ["--init", "gaussian", "--n", n, "--d", d, "--seed", seed, "--T", T, "--dt", dt,
            "--save-every", every]
    for k, v in opts.items():
        flag = "--" + k.replace("_", "-")
        args += [flag] if v is True else [flag, v]
    traj, obs = run_cli_flow(cli, *args)
    # The CLI runs clouds under 512 tokens on one thread: so do we.
    attnflow.set_num_threads(1)
    X0 = attnflow.init_cloud("gaussian", n=n, d=d, seed=seed)
    flow = attnflow.Flow(n, d, **opts)
    times, frames = flow.trajectory(X0, T, dt, save_every=every)
    assert frames.shape == traj.positions.shape == (len(times), n, d)
    assert np.array_equal(times, traj.times)
    assert np.array_equal(frames, traj.positions)
    assert traj.meta["command"].startswith("attnflow flow")
    # the observables file, line for line
    for k, X in enumerate(frames):
        o = flow.observables(X)
        assert np.array_equal(o["mean"], [obs["mean_%d" % (j + 1)][k] for j in range(d)])
        for name in ("var", "rank_res", "colsum_err", "min_dist", "max_ip"):
            assert o[name] == obs[name][k], name
        assert o["clusters"] == obs["clusters"][k]
        if np.isnan(obs["energy"][k]):
            assert np.isnan(o["energy"])
        else:
            assert abs(o["energy"] - obs["energy"][k]) <= 1e-12 * max(1, abs(o["energy"]))


def test_step_integrate_velocity_and_the_sinkhorn_mean_law():
    n, d = 30, 2
    X = attnflow.init_cloud("gaussian", n=n, d=d, seed=2)
    V = np.array([[-0.5, 1.0], [-1.0, -0.5]])
    flow = attnflow.Flow(n, d, norm="sinkhorn", V=V, tol=1e-12)
    K = flow.kernel(X)
    np.testing.assert_allclose(K.sum(axis=0), 1, atol=1e-11)
    np.testing.assert_allclose(flow.velocity(X), K @ X @ V.T, rtol=1e-10, atol=1e-12)
    m0 = X.mean(axis=0)
    Y = X.copy()
    assert flow.integrate(Y, 1.0, 0.01) is Y  # in place
    # doubly stochastic K: m' = W_V m, so m(1) = expm(W_V) m0 (here a rotation-decay)
    expected = np.exp(-0.5) * np.array([[np.cos(1), np.sin(1)], [-np.sin(1), np.cos(1)]]) @ m0
    np.testing.assert_allclose(Y.mean(axis=0), expected, atol=1e-9)
    assert flow.stats["evaluations"] > 0 and flow.stats["sinkhorn_iterations"] > 0


def test_flow_errors_raise():
    with pytest.raises(attnflow.Error, match="SoftMax"):
        attnflow.Flow(10, 2, norm="sinkhorn", usa=True)
    with pytest.raises(ValueError, match="norm"):
        attnflow.Flow(10, 2, norm="doubly")
    flow = attnflow.Flow(10, 2)
    with pytest.raises(ValueError, match="shape"):
        flow.velocity(np.zeros((9, 2)))
    with pytest.raises(ValueError, match="in-place"):
        flow.step(np.zeros((10, 2), dtype=np.float32), 0.1)
    with pytest.raises(ValueError, match="in-place"):
        flow.step(np.zeros((2, 10)).T, 0.1)
    with pytest.raises(attnflow.Error):
        flow.step(np.zeros((10, 2)), -1.0)
    X = np.zeros((10, 2))
    X[0, 0] = np.inf
    with pytest.raises(attnflow.Error):
        flow.step(X, 0.1)
