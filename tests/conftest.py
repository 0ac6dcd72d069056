import os
from pathlib import Path

import pytest

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")

REPO = Path(__file__).resolve().parents[1]
ARC_DIR = REPO.parent / "shared" / "data" / "arc"


@pytest.fixture(scope="session")
def arc_dir():
    if not (ARC_DIR / "arc-agi_training_challenges.json").exists():
        pytest.skip(f"real ARC data not found at {ARC_DIR}")
    return ARC_DIR
