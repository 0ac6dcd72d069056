"""pyproject.toml: the license as an SPDX expression and no setuptools deprecation warning when it is read."""
import re
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_license_is_an_spdx_string_and_setuptools_is_new_enough():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert data["project"]["license"] == "MIT"
    req = [r for r in data["build-system"]["requires"] if r.startswith("setuptools")]
    m = re.fullmatch(r"setuptools>=(\d+)", req[0].replace(" ", "")) if req else None
    assert m and int(m.group(1)) >= 77, f"build-system requires {req}: SPDX license strings need setuptools>=77"


def test_setuptools_reads_pyproject_without_a_warning():
    setuptools = pytest.importorskip("setuptools")
    if int(setuptools.__version__.split(".")[0]) < 77:
        pytest.skip(f"setuptools {setuptools.__version__} here; the build uses >=77 in its own environment")
    from setuptools.config.pyprojecttoml import apply_configuration
    from setuptools.dist import Distribution

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a SetuptoolsDeprecationWarning fails the test
        dist = apply_configuration(Distribution(), str(REPO / "pyproject.toml"))
    assert dist.metadata.name == "trmlab"
