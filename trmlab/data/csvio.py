"""Reading the public puzzle CSVs (Sudoku-Extreme, Maze-Hard): ``source,question,answer,rating``."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterator, List, Tuple

from .format import DataBuildError, SkipLog

HEADER = ["source", "question", "answer", "rating"]


def read_puzzle_csv(path, skips: SkipLog) -> Iterator[Tuple[str, str, str, str, str]]:
    """Yield ``(where, source, question, answer, rating)`` per data row; ``where`` is ``file:row``.

    Rows with the wrong number of columns are reported to ``skips``. A missing file or a header that is
    not the public one raises :class:`DataBuildError`.
    """
    path = Path(path)
    if not path.is_file():
        raise DataBuildError(f"{path}: CSV file not found")
    with open(path, newline="") as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            raise DataBuildError(f"{path}: empty file (expected header {','.join(HEADER)})") from None
        except csv.Error as e:
            raise DataBuildError(f"{path}:1: unreadable CSV ({e})") from None
        if [h.strip().lower() for h in header] != HEADER:
            raise DataBuildError(f"{path}:1: header {header!r}, expected {','.join(HEADER)}")
        row_no = 1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as e:
                row_no += 1
                skips.skip(f"{path}:{row_no}", f"unreadable CSV row ({e})")
                continue
            row_no = reader.line_num
            if not row:
                continue
            if len(row) != 4:
                skips.skip(f"{path}:{row_no}", f"{len(row)} columns, expected 4 ({','.join(HEADER)})")
                continue
            yield (f"{path}:{row_no}", *row)


def write_puzzle_csv(path, rows: List[Tuple[str, str, str, object]]) -> None:
    """Write rows ``(source, question, answer, rating)`` with the public header."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        for r in rows:
            w.writerow(list(r))


def test_csv_for(csv, test_csv, test_generate):
    """The test split's CSV: the one given, else ``test.csv`` beside a ``train.csv``, else None when the
    test puzzles are to be generated; raises DataBuildError when none of these applies."""
    if test_csv is not None or test_generate is not None:
        return test_csv
    guess = Path(csv).with_name("test.csv")
    if Path(csv).name == "train.csv" and guess.is_file():
        return guess
    raise DataBuildError("give --test-csv FILE or --test-generate N for the test split")
