"""Files written by trmlab keep the user's permissions (``0o666 & ~umask``, as ``open()`` gives them)."""
import os
import stat

import numpy as np
import pytest
import torch

from trmlab.io import atomic_write, current_umask, write_json_atomic
from trmlab.train import checkpoint as ckpt


@pytest.fixture
def umask():
    before = os.umask(0o022)
    os.umask(before)

    def set_(mask):
        os.umask(mask)
        return mask

    yield set_
    os.umask(before)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_atomic_writes_get_the_mode_open_would_give(tmp_path, umask, mask):
    umask(mask)
    assert current_umask() == mask
    expected = 0o666 & ~mask
    plain = tmp_path / "plain.txt"
    with open(plain, "w") as f:
        f.write("x")
    assert mode(plain) == expected
    write_json_atomic(tmp_path / "config.json", {"a": 1})
    atomic_write(tmp_path / "blob.bin", lambda f: f.write(b"\x00" * 10))
    ckpt.save_atomic({"w": torch.ones(2)}, tmp_path / "checkpoints" / "step_1.pt")
    ckpt.copy_atomic(tmp_path / "checkpoints" / "step_1.pt", tmp_path / "checkpoints" / "last.pt")
    for name in ("config.json", "blob.bin", "checkpoints/step_1.pt", "checkpoints/last.pt"):
        assert mode(tmp_path / name) == expected, (name, oct(mode(tmp_path / name)), oct(expected))
    # still atomic: no temporary file left beside them
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blob.bin", "checkpoints", "config.json", "plain.txt"]
    # the existing file is replaced in one rename, contents intact
    write_json_atomic(tmp_path / "config.json", {"a": 2})
    assert (tmp_path / "config.json").read_text() == '{"a": 2}' and mode(tmp_path / "config.json") == expected


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_dataset_files_get_the_users_mode(tmp_path, umask, mask):
    from trmlab.data.sudoku import build_sudoku

    umask(mask)
    out = tmp_path / "s4"
    build_sudoku(out, generate=6, size=4, num_aug=1, test_generate=2, seed=0, progress=False, echo=lambda *a: None)
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) > 10
    for p in files:
        assert mode(p) == 0o666 & ~mask, (p, oct(mode(p)))
    for d in [out] + [p for p in out.rglob("*") if p.is_dir()]:
        assert mode(d) == 0o777 & ~mask, (d, oct(mode(d)))
    assert np.load(out / "train" / "all__inputs.npy").shape[1] == 16
