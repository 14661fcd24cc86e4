import os
import subprocess

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CLI = os.environ.get("ATTNFLOW_CLI", os.path.join(ROOT, "build", "attnflow"))


@pytest.fixture
def cli(tmp_path):
    """Runs `attnflow ARGS...` in a temporary folder; returns (status, stdout, stderr, folder)."""
    def run(*args):
        p = subprocess.run([CLI, *map(str, args)], cwd=tmp_path, capture_output=True, text=True)
        return p.returncode, p.stdout, p.stderr, tmp_path
    return run
