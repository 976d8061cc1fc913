"""The documentation site builds with warnings as errors, and its API reference is complete.

The build runs Sphinx in a subprocess on a copy of ``docs/`` and ``examples/`` in a
temporary folder, so generated files (the API stubs, the example gallery) never land in
the working tree. It needs the ``docs`` extra (part of ``all``) and no network: the
example scripts run at their small size (``STEINLATENT_GALLERY=1``), intersphinx is off.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"
DOCS_EXTRA = ("sphinx", "numpydoc", "sphinx_gallery", "myst_parser", "pydata_sphinx_theme")
BUILD_TIMEOUT_S = 900  # measured: about 70 s on the shared 2-core machine

# The build takes about a minute: more than a global per-test timeout may allow.
pytestmark = (
    [pytest.mark.timeout(BUILD_TIMEOUT_S + 60)]
    if importlib.util.find_spec("pytest_timeout") else []
)

# Written into docs/ by a build in place (`python -m sphinx docs ...`); not copied.
GENERATED = ("_build", "auto_examples", "generated", "sg_execution_times.rst", "__pycache__")


def _require_docs_extra() -> None:
    missing = [m for m in DOCS_EXTRA if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}: pip install -e \".[docs]\"")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Build the HTML site once; return (html folder, seconds, Sphinx's output)."""
    _require_docs_extra()
    work = tmp_path_factory.mktemp("docs_build")
    shutil.copytree(DOCS, work / "docs", ignore=shutil.ignore_patterns(*GENERATED))
    shutil.copytree(EXAMPLES, work / "examples",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    html = work / "html"
    env = dict(os.environ, STEINLATENT_GALLERY="1", MPLBACKEND="Agg")
    env.setdefault("OMP_NUM_THREADS", "1")
    env.pop("STEINLATENT_DOCS_INTERSPHINX", None)  # no network in the test
    env.pop("STEINLATENT_DOCS_STRICT", None)
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
           "-d", str(work / "doctrees"), str(work / "docs"), str(html)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=work / "docs", env=env, capture_output=True, text=True,
                          timeout=BUILD_TIMEOUT_S)
    seconds = time.perf_counter() - t0
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, (
        f"the documentation build failed (warnings are errors) after {seconds:.0f} s; "
        f"reproduce with: python -m sphinx -W --keep-going -b html docs build/docs/html\n"
        + output[-8000:]
    )
    return html, seconds, output


def test_site_builds_with_warnings_as_errors(site):
    html, seconds, _ = site
    assert (html / "index.html").is_file()
    print(f"documentation built in {seconds:.0f} s")


@pytest.mark.parametrize("page", [
    "index.html",
    "user_guide/getting_started.html",
    "user_guide/estimator.html",
    "user_guide/score_models.html",
    "user_guide/dimension.html",
    "scale.html",
    "which_estimator.html",
    "refinement.html",
    "results/which_estimator/which_estimator.html",
    "reproduction.html",
    "beyond.html",
    "score_models.html",
    "user_guide/results.html",
    "api/index.html",
    "api/generated/steinlatent.SteinLatent.html",
    "api/generated/steinlatent.scores.KernelScore.html",
    "auto_examples/index.html",
    "auto_examples/real_data_concrete.html",
])
def test_page_exists(site, page):
    assert (site[0] / page).is_file(), page


def test_site_header_shows_the_package_version(site):
    import steinlatent

    text = (site[0] / "index.html").read_text(encoding="utf-8")
    assert f"steinlatent {steinlatent.__version__}" in text


@pytest.mark.parametrize("page", ["index.html", "user_guide/estimator.html", "beyond.html",
                                  "reproduction.html", "score_models.html",
                                  "which_estimator.html", "refinement.html", "scale.html"])
def test_formulas_are_math_for_mathjax(site, page):
    """Formulas reach the page as TeX in math spans (which MathJax renders), not as
    plain text; the page loads MathJax."""
    text = (site[0] / page).read_text(encoding="utf-8")
    assert "mathjax" in text.lower()
    spans = re.findall(r'<span class="math notranslate nohighlight">(.*?)</span>', text)
    blocks = re.findall(r'<div class="math notranslate nohighlight">', text)
    assert len(spans) + len(blocks) >= 5, page
    assert any("\\top" in s or "\\mathbb" in s or "\\sigma" in s for s in spans), page


def test_every_example_ran_in_the_gallery(site):
    html = site[0]
    for script in sorted(EXAMPLES.glob("*.py")):
        page = html / "auto_examples" / f"{script.stem}.html"
        assert page.is_file(), f"{script.name} has no gallery page"
        text = page.read_text(encoding="utf-8")
        # An executed example shows what it printed (every script prints its table).
        assert "sphx-glr-script-out" in text, f"{script.name} did not run"


def test_every_example_has_the_small_size_switch():
    """The gallery runs every script: each must shrink and write to a temporary folder
    under STEINLATENT_GALLERY=1, or the docs build would take hours and overwrite
    docs/results/."""
    for script in sorted(EXAMPLES.glob("*.py")):
        text = script.read_text(encoding="utf-8")
        assert "STEINLATENT_GALLERY" in text, f"{script.name} has no small-size switch"


def test_figures_of_the_markdown_pages_are_published(site):
    html = site[0]
    images = {p.name for p in (html / "_images").iterdir()}
    for page in sorted(DOCS.glob("*.md")):
        for target in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
            if "://" in target:
                continue
            assert Path(target).name in images, f"{page.name}: figure {target} not published"


# --------------------------------------------------------------- API reference coverage
def _public_modules():
    import steinlatent

    names = ["steinlatent"]
    for info in pkgutil.iter_modules(steinlatent.__path__):
        if not info.name.startswith("_"):
            names.append(f"steinlatent.{info.name}")
    return names


def _documented_names(index: Path) -> set[str]:
    """Full names listed in the autosummary tables of docs/api/index.rst."""
    names, module, in_table = set(), "", False
    for line in index.read_text(encoding="utf-8").splitlines():
        m = re.match(r"\.\. (?:currentmodule|automodule):: (\S+)", line)
        if m:
            module, in_table = m.group(1), False
            continue
        if line.startswith(".. autosummary::"):
            in_table = True
            continue
        if in_table:
            if line and not line.startswith(" "):
                in_table = False
            elif line.strip() and not line.strip().startswith(":"):
                names.add(f"{module}.{line.strip()}")
    return names


def test_api_reference_lists_every_public_name():
    """Each name in a public module's ``__all__`` has a page in docs/api/index.rst."""
    documented = _documented_names(DOCS / "api" / "index.rst")
    missing = []
    for modname in _public_modules():
        module = importlib.import_module(modname)
        for name in getattr(module, "__all__", []):
            if name.startswith("__"):
                continue  # __version__
            if f"{modname}.{name}" not in documented:
                missing.append(f"{modname}.{name}")
    assert not missing, (
        "public names missing from docs/api/index.rst (add each under its module's "
        f"autosummary table): {missing}"
    )
