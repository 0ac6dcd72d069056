"""The public CSV files of Sudoku-Extreme and Maze-Hard from the Hugging Face Hub, as the reference
fetches them (``hf_hub_download(repo_type="dataset")`` from the same repositories), copied into the data
folder so a build reads plain files.

>>> fetch_csvs("sudoku")      # -> data/hub/sudoku-extreme/{train,test}.csv
>>> fetch_csvs("maze")        # -> data/hub/maze-30x30-hard-1k/{train,test}.csv

The download goes through huggingface_hub's cache (``HF_HUB_CACHE``, or ``cache_dir``); with
``HF_HUB_OFFLINE=1`` only that cache is read (no network), which is how the tests run it.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable, Optional

from ..io import atomic_write
from ..paths import display_path, resolve
from .format import DatasetError

#: family -> the Hub dataset repository the reference's builder downloads from
HUB_REPOS = {"sudoku": "sapientinc/sudoku-extreme", "maze": "sapientinc/maze-30x30-hard-1k"}
HUB_FILES = ("train.csv", "test.csv")


def hub_folder(family: str) -> Path:
    """Where the CSV files of ``family`` are kept: ``data/hub/<repository name>``."""
    if family not in HUB_REPOS:
        raise DatasetError(f"--hub: no Hub dataset for '{family}' (have: {', '.join(HUB_REPOS)})")
    return resolve(f"data/hub/{HUB_REPOS[family].split('/')[1]}")


def fetch_csvs(family: str, dest: Optional[str | os.PathLike] = None, cache_dir: Optional[str] = None,
               echo: Callable = print) -> Path:
    """Download (or read from the Hub cache) ``train.csv`` and ``test.csv`` of ``family`` and copy them
    into ``dest`` (default :func:`hub_folder`); returns the folder. Files already there are kept."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    repo = HUB_REPOS.get(family)
    if repo is None:
        raise DatasetError(f"--hub: no Hub dataset for '{family}' (have: {', '.join(HUB_REPOS)})")
    folder = resolve(dest) if dest else hub_folder(family)
    for name in HUB_FILES:
        target = folder / name
        if target.is_file():
            continue
        try:
            src = hf_hub_download(repo_id=repo, filename=name, repo_type="dataset", cache_dir=cache_dir)
        except LocalEntryNotFoundError as e:
            raise DatasetError(f"--hub: {repo}/{name} is not in the Hugging Face cache and the Hub cannot be reached "
                               f"({type(e).__name__}); connect, or unset HF_HUB_OFFLINE") from None
        except (HfHubHTTPError, OSError) as e:
            raise DatasetError(f"--hub: downloading {repo}/{name} failed ({type(e).__name__}: {e})") from None
        with open(src, "rb") as f_in:
            atomic_write(target, lambda f: shutil.copyfileobj(f_in, f))
        echo(f"fetched {repo}/{name} -> {display_path(target)}")
    return folder


__all__ = ["HUB_REPOS", "hub_folder", "fetch_csvs"]
