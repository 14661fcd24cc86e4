"""The heat solver from Python, and attnflow.load on the CLI's files."""
import numpy as np
import pytest

import attnflow


def test_heat_gaussian_matches_the_exact_solution():
    g = attnflow.Density("gaussian", d=2, mean=[0.3, -0.2], sigma=0.8)
    h = attnflow.Heat(d=2, N=128, half=10.0)
    h.set_density(g)
    for t in (0.1, 0.5):
        rho = h.evolve(t)
        assert rho.shape == (128, 128)
        np.testing.assert_allclose(rho, h.exact(g, t), atol=1e-8)
    x = h.nodes[0]
    dx = x[1] - x[0]
    assert abs(rho.sum() * dx * dx - 1) < 1e-12
    assert abs(g.variance(0.5) - (0.64 + 1.0)) < 1e-15


def test_heat_errors_raise():
    with pytest.raises(attnflow.Error):
        attnflow.Heat(d=3, N=16)
    with pytest.raises(attnflow.Error):
        attnflow.Density("gaussian", d=1, sigma=-1.0)
    h = attnflow.Heat(d=1, N=64)
    with pytest.raises(ValueError, match="shape"):
        h.set(np.zeros(63))


def test_load_reads_the_heat_file_of_the_cli(cli):
    rc, out, err, d = cli("heat", "--d", 1, "--N", 256, "--T", 0.5, "--snapshots", 3,
                          "--out", "heat.dat", "--quiet")
    assert rc == 0, err
    data = attnflow.load(d / "heat.dat")
    assert data.meta["version"] == attnflow.__version__
    assert data.columns == ["x", "rho", "exact"]
    np.testing.assert_array_equal(data.times, [0, 0.25, 0.5])
    assert data["rho"].shape == (3, 256)
    h = attnflow.Heat(d=1, N=256, half=float(data.meta["grid"].split("[")[1].split(",")[0]) * -1)
    g = attnflow.Density("gaussian", d=1)
    h.set_density(g)
    np.testing.assert_allclose(h.evolve(0.5), data["rho"][2], rtol=0, atol=1e-15)
    assert "wrap_check" in data.meta  # a '#' line after the data


def test_load_reads_matrices_logs_and_grids(cli):
    rc, out, err, d = cli("attention", "--n", 20, "--d", 2, "--out", "K.dat", "--log", "log.dat")
    assert rc == 0, err
    K = attnflow.load(d / "K.dat")
    assert K.array.shape == (20, 20) and K.columns is None
    np.testing.assert_allclose(K.array.sum(axis=0), 1, atol=1e-8)
    log = attnflow.load(d / "log.dat")
    assert log.columns == ["iter", "row_err", "col_err"]
    assert int(log["iter"][-1]) == int(log.meta["iterations"])
    rc, out, err, d = cli("heat", "--d", 2, "--N", 16, "--snapshots", 2, "--out", "h2.dat", "--quiet")
    assert rc == 0, err
    h2 = attnflow.load(d / "h2.dat")
    rho = h2.grid("rho")
    assert rho.shape == (2, 16, 16)
    x1, x2 = h2.grid("x1")[0], h2.grid("x2")[0]
    assert np.all(x1[:, 0] == x1[:, 5]) and np.all(x2[0] == x2[3])  # x1 slow, x2 fast


def test_version_is_one_number_everywhere(cli):
    rc, out, err, d = cli("--version")
    assert out.strip() == "attnflow " + attnflow.__version__ == "attnflow " + attnflow.library_version()


def test_load_reads_sweeps_with_per_block_columns(cli):
    rc, out, err, d = cli("compare", "--d", 1, "--n", 50, "--T", 0.01, "--dt", 0.005, "--N", 64,
                          "--sweep", "n", "--values", "30,60", "--repeats", 1, "--out", "sw",
                          "--quiet")
    assert rc == 0, err
    sw = attnflow.load(d / "sw" / "sweep.dat")
    assert len(sw.blocks) == 2
    assert sw.block_columns[1][:2] == ["value", "mean_rel_inc_err"]
    np.testing.assert_array_equal(sw["n"], [30, 60])  # block 0 only has it
    # block 1 (means over one seed each) repeats block 0's relative errors
    np.testing.assert_array_equal(sw["mean_rel_inc_err"], sw["rel_inc_err"])


def test_load_reads_convex_summaries_and_tables(cli):
    rc, out, err, d = cli("convex", "--samples", 20, "--out", "cx", "--quiet")
    assert rc == 0, err
    summary = attnflow.load(d / "cx" / "summary.txt")
    it = attnflow.load(d / "cx" / "iterations.dat")
    assert summary.meta["converged"] == 1.0
    assert summary.meta["gap"] <= 1e-6
    assert it["gap"][-1] == summary.meta["gap"]
    assert f"rank={int(summary.meta['rank'])}" in out
