"""The two example scripts run and say what they should."""
import os
import subprocess
import sys

from conftest import ROOT

EX = os.path.join(ROOT, "python", "examples")


def run(tmp_path, script, *args):
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"))
    p = subprocess.run([sys.executable, os.path.join(EX, script), *map(str, args)], cwd=tmp_path,
                       env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_pot_port_agrees_with_pot(tmp_path):
    out = run(tmp_path, "pot_port.py", 120, 80, 0.05)
    line = [l for l in out.splitlines() if l.startswith("max |G_attnflow - G_POT|")][0]
    assert float(line.split("=")[1].split()[0]) < 1e-10


def test_flow_plot_writes_data_and_the_sinkhorn_mean_law_holds(tmp_path):
    out = run(tmp_path, "flow_plot.py", tmp_path / "fp", 60, 0.5)
    sk = [l for l in out.splitlines() if l.startswith("sinkhorn")][0]
    mean, expected = sk.split("mean at T [")[1].split("]")[0], sk.split("m0 [")[1].split("]")[0]
    assert mean == expected
    assert (tmp_path / "fp.dat").stat().st_size > 0
