"""The wheel pip users get: guest sources, licences, examples, types, one version.

Builds the wheel once (hatchling, a few seconds, no network) and looks inside;
the examples listing runs from the unpacked wheel, as from an installed package.
"""

from __future__ import annotations

import email
import importlib.metadata
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import syscalls_async

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    pytest.importorskip("hatchling", reason="building the wheel needs hatchling (the dev extra)")
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(ROOT)],
        check=True, capture_output=True,
    )  # fmt: skip
    (built,) = out.glob("syscalls_async-*.whl")
    return zipfile.ZipFile(built)


def test_wheel_carries_what_an_installed_package_needs(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    data = "syscalls_async/_data"
    sources = {
        f"{data}/{folder}/{p.relative_to(ROOT / folder)}"
        for folder in ("kernel", "guest", "examples")
        for p in (ROOT / folder).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".o", ".ko", ".cmd")
    }
    assert {f"{data}/kernel/portal_abi.h", f"{data}/guest/agent.c"} <= sources
    assert {f"{data}/examples/skip_ioctl.py", f"{data}/examples/test_example_plugin.py"} <= sources
    assert sources - names == set()
    assert {
        "syscalls_async/py.typed",
        "syscalls_async/portal/cscan.c",
        "syscalls_async/testing/prototypes-6.1.0-amd64.json",
        "syscalls_async/testing/pytest_plugin.py",
    } <= names
    dist_info = f"syscalls_async-{syscalls_async.__version__}.dist-info"
    licences = {f"{dist_info}/licenses/{n}" for n in
                ("LICENSE", "LICENSES/GPL-2.0-only.txt")}  # fmt: skip
    assert licences <= names
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", ".venv"))]

    meta = email.message_from_bytes(wheel.read(f"{dist_info}/METADATA"))
    assert meta["Version"] == syscalls_async.__version__
    assert meta["License-Expression"] == "GPL-2.0-only"
    assert "Typing :: Typed" in meta.get_all("Classifier", [])
    entry_points = wheel.read(f"{dist_info}/entry_points.txt").decode()
    assert "syscalls_async = syscalls_async.testing.pytest_plugin" in entry_points
    assert "syscalls-async = syscalls_async.cli:main" in entry_points


def test_examples_are_found_in_the_installed_layout(wheel: zipfile.ZipFile, tmp_path: Path) -> None:
    wheel.extractall(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    listing = subprocess.run(
        [sys.executable, "-m", "syscalls_async.examples"],
        check=True, capture_output=True, text=True, env=env, cwd=tmp_path,
    ).stdout  # fmt: skip
    assert f"examples in {tmp_path / 'syscalls_async/_data/examples'}:" in listing
    assert "skip_ioctl" in listing and "file_access" in listing
    path = subprocess.run(
        [sys.executable, "-m", "syscalls_async.examples", "skip_ioctl"],
        check=True, capture_output=True, text=True, env=env, cwd=tmp_path,
    ).stdout.strip()  # fmt: skip
    assert Path(path) == tmp_path / "syscalls_async/_data/examples/skip_ioctl.py"


def test_one_version() -> None:
    assert importlib.metadata.version("syscalls-async") == syscalls_async.__version__
