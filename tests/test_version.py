"""One version everywhere: ``__version__``, the package metadata, ``steinlatent --version``,
the documentation site and the CHANGELOG's newest release.

``src/steinlatent/__init__.py`` is the only place that spells the version; pyproject
declares it dynamic and setuptools reads it from there.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

import steinlatent
from steinlatent.cli import main

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
VERSION = steinlatent.__version__


def test_version_is_a_release_number():
    assert re.fullmatch(r"\d+\.\d+\.\d+", VERSION), VERSION


def test_changelog_names_the_version_as_its_newest_release():
    headings = re.findall(r"^## \[([^\]]+)\]", (ROOT / "CHANGELOG.md").read_text("utf-8"),
                          flags=re.MULTILINE)
    released = [h for h in headings if h.lower() != "unreleased"]
    assert released and released[0] == VERSION, (
        f"CHANGELOG.md's newest release is {released[:1]}, the package says {VERSION}"
    )


def test_pyproject_reads_the_version_from_the_package():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    assert "version" not in project["project"], "a second, static version in pyproject"
    assert "version" in project["project"]["dynamic"]
    attr = project["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "steinlatent.__version__"


def test_built_metadata_has_the_version(tmp_path):
    # What pip would record: setuptools' metadata hook on a copy of the project (so the
    # egg-info it writes stays out of the working tree). No network, about a second.
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "src", tmp_path / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    code = ("import sys; from setuptools import build_meta as b; "
            "print(b.prepare_metadata_for_build_wheel(sys.argv[1]))")
    out = tmp_path / "meta"
    out.mkdir()
    proc = subprocess.run([sys.executable, "-c", code, str(out)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    dist_info = out / proc.stdout.strip().splitlines()[-1]
    text = (dist_info / "METADATA").read_text("utf-8")
    assert re.search(rf"^Version: {re.escape(VERSION)}$", text, flags=re.MULTILINE), text[:300]


def test_installed_metadata_agrees_when_installed_from_this_checkout():
    try:
        dist = metadata.distribution("steinlatent")
    except metadata.PackageNotFoundError:
        pytest.skip("steinlatent is not installed (run from the source tree)")
    url = json.loads(dist.read_text("direct_url.json") or "{}").get("url", "")
    if url != ROOT.as_uri():
        pytest.skip(f"the installed steinlatent comes from {url or 'an index'}, not here")
    assert dist.version == VERSION, "reinstall: pip install -e ."


def test_command_line_prints_the_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.split() == ["steinlatent", VERSION]


def test_documentation_release_is_the_version():
    # conf.py sets environment variables when it runs: read it in a fresh process.
    code = ("import runpy, sys; c = runpy.run_path(sys.argv[1]); "
            "print(c['release']); print(c['html_title'])")
    proc = subprocess.run([sys.executable, "-c", code, str(ROOT / "docs" / "conf.py")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    release, title = proc.stdout.splitlines()[-2:]
    assert release == VERSION and title == f"steinlatent {VERSION}"
