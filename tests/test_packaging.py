"""The wheel, built and installed as a user would get it.

It must hold one top-level package, ``agentjournal``: the repository's ``domain``,
``application`` and ``infrastructure`` folders install inside it, so another
project's packages of those names keep working next to it, and after it is gone.
"""

from __future__ import annotations

import shutil
import site
import subprocess
import sys
import tomllib
import venv
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

SOURCES = ("pyproject.toml", "README.md", "agentjournal", "domain", "application", "infrastructure")
"""What a build reads from the repository."""

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
NAMESAKES = ("domain", "application")
"""Other projects' packages that share a name with one of the repository's folders."""


def run(*command: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("packaging")


@pytest.fixture(scope="module")
def wheels(work: Path) -> dict[str, Path]:
    """Wheels of agentjournal, built from a copy of its sources (a build writes into the
    tree it builds), and of the namesakes, by project name."""
    source = work / "source"
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, source / name)
    projects = [source, *(namesake(work, name) for name in NAMESAKES)]
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", *_isolation(), "-w", work / "dist", *projects)
    return {path.name.split("-")[0]: path for path in (work / "dist").glob("*.whl")}


@pytest.fixture(scope="module")
def wheel(wheels: dict[str, Path]) -> Path:
    return wheels["agentjournal"]


def _isolation() -> list[str]:
    """Build with the setuptools at hand when it is as recent as pyproject.toml asks
    (nothing is downloaded); otherwise let pip fetch that one into an isolated build."""
    recent = int(version("setuptools").split(".")[0]) >= 77
    return ["--no-build-isolation"] if recent else []


@pytest.fixture(scope="module")
def python(work: Path) -> Path:
    """A fresh environment that sees agentjournal's dependencies (those of this test run)
    but no agentjournal and nothing named like the repository's folders."""
    venv.create(work / "env", with_pip=False)
    python = work / "env" / "bin" / "python"
    purelib = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").strip())
    (purelib / "dependencies.pth").write_text(f"{_dependencies(work / 'dependencies')}\n")
    return python


def _dependencies(folder: Path) -> Path:
    """This run's site-packages, as links in one folder, less every agentjournal install
    (an editable one included) and the namesakes, so the environment starts without them."""
    folder.mkdir()
    for site_packages in map(Path, site.getsitepackages()):
        for entry in site_packages.iterdir():
            mine = entry.name.startswith(("agentjournal", "__editable__")) or entry.stem in NAMESAKES
            if not mine and not (folder / entry.name).exists():
                (folder / entry.name).symlink_to(entry)
    return folder


def namesake(work: Path, name: str) -> Path:
    """A tiny project of another publisher whose package is called ``name``."""
    project = work / f"their-{name}"
    (project / name).mkdir(parents=True)
    (project / name / "__init__.py").write_text(f"MARKER = 'their {name}'\n")
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
        f'[project]\nname = "their-{name}"\nversion = "1.0"\n'
        f'[tool.setuptools]\npackages = ["{name}"]\n'
    )
    return project


def test_the_wheel_holds_one_top_level_package(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        dist_info = f"agentjournal-{PROJECT['version']}.dist-info"
        assert {name.split("/")[0] for name in names} == {"agentjournal", dist_info}
        if f"{dist_info}/top_level.txt" in names:
            assert archive.read(f"{dist_info}/top_level.txt").decode().split() == ["agentjournal"]
        assert "License-Expression: MIT" in archive.read(f"{dist_info}/METADATA").decode()
        entry_points = archive.read(f"{dist_info}/entry_points.txt").decode()
    assert "agentjournal = agentjournal.infrastructure.cli.main:main" in entry_points
    for layer in ("domain", "application", "infrastructure"):
        # Every package of the source tree, however deep, is in the wheel.
        for marker in (ROOT / layer).rglob("__init__.py"):
            assert f"agentjournal/{marker.relative_to(ROOT).as_posix()}" in names
    assert "agentjournal/py.typed" in names
    assert "agentjournal/infrastructure/compute/sandbox/Dockerfile" in names


def test_installed_next_to_namesakes_both_work_and_uninstalling_leaves_theirs(
    wheels: dict[str, Path], python: Path, work: Path
) -> None:
    pip = (python, "-m", "pip", "--disable-pip-version-check")
    run(*pip, "install", "--no-deps", "--no-index", *(wheels[f"their_{name}"] for name in NAMESAKES))
    run(*pip, "install", "--no-deps", "--no-index", wheels["agentjournal"])

    check = (
        "import domain, application, agentjournal, agentjournal.domain\n"
        "from agentjournal import ManagedAgent\n"
        "print(domain.MARKER, application.MARKER, agentjournal.domain.Session.__name__)\n"
        "print(agentjournal.__file__)\n"
    )
    markers, location = run(python, "-c", check, cwd=work).splitlines()
    assert markers == "their domain their application Session"
    assert Path(location).is_relative_to(work / "env")
    expected = f"agentjournal {PROJECT['version']}\n"
    assert run(python.parent / "agentjournal", "--version") == expected
    assert run(python, "-m", "agentjournal", "--version", cwd=work) == expected
    demo = run(python.parent / "agentjournal", "--store", work / "demo.db", "demo", cwd=work)
    assert "the fork remembers: Your favorite color is blue." in demo

    run(*pip, "uninstall", "--yes", "agentjournal")
    left = run(python, "-c", "import domain, application; print(domain.MARKER, application.MARKER)", cwd=work)
    assert left == "their domain their application\n"
    gone = subprocess.run([python, "-c", "import agentjournal"], cwd=work, capture_output=True, check=False)
    assert gone.returncode == 1 and b"No module named 'agentjournal'" in gone.stderr
    assert not (python.parent / "agentjournal").exists()
