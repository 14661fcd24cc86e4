import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train import main  # noqa: E402

main("train_digits")
