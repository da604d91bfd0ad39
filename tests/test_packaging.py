"""A regular (non-editable) install maps the top-level folders into `islandrun`."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_maps_folders_into_one_package(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path / "dist"), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )
    (wheel,) = (tmp_path / "dist").glob("islandrun-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in ("node/cli.py", "protocol/messages.py", "transports/base.py",
                   "simulations/__init__.py", "__init__.py"):
        assert f"islandrun/{module}" in names
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "islandnode = islandrun.node.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()

    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
         str(wheel)],
        check=True, capture_output=True, timeout=300,
    )
    # -S: no site-packages, so only the installed wheel (not the editable
    # install of this checkout) can provide `islandrun`.
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "import islandrun.protocol.ids as m; print(m.__file__)"
    )
    out = subprocess.run([sys.executable, "-S", "-c", probe, str(target)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip().startswith(str(target))
