"""Sphinx configuration of the steinlatent documentation.

Build (from the repository root, after ``pip install -e ".[docs]"``)::

    python -m sphinx -W -b html docs build/docs/html

The build needs no network: intersphinx links to NumPy, SciPy, scikit-learn and
matplotlib are added only when ``STEINLATENT_DOCS_INTERSPHINX=1`` (they fetch the
projects' inventories). The ``examples/`` scripts run as a sphinx-gallery gallery at
small sizes: this file sets ``STEINLATENT_GALLERY=1``, which each script reads to shrink
its study and to write its tables and figures to a temporary folder instead of
``docs/results/``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Before sphinx-gallery runs the examples (in this process): small sizes, no writes
# into docs/results/, one BLAS thread.
os.environ.setdefault("STEINLATENT_GALLERY", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

HERE = Path(__file__).resolve().parent
try:
    import steinlatent
except ImportError:  # building from a checkout that is not installed
    sys.path.insert(0, str(HERE.parent / "src"))
    import steinlatent

# -- Project -----------------------------------------------------------------------
project = "steinlatent"
author = "the steinlatent developers"
copyright = "the steinlatent developers, BSD-3-Clause"
version = release = steinlatent.__version__

# -- General -----------------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]
templates_path = ["_templates"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = [
    "_build",
    "Thumbs.db",
    ".DS_Store",
    # (The markdown tables under results/ are pages: see _title_results_page below and
    # user_guide/results.md.) sphinx-gallery's own copies of the example scripts:
    "auto_examples/*.ipynb",
    "auto_examples/*.py",
    "auto_examples/*.zip",
    "_snippets",  # code shared by several pages (literalinclude), not pages
]
default_role = "literal"  # `x` in a docstring is code, not a broken reference
pygments_style = "sphinx"
suppress_warnings: list[str] = []

# Broken cross-references fail the build. References to other projects resolve only
# with intersphinx (off by default, see above); without it they are ignored here.
nitpicky = True
_EXTERNAL = (
    r"(numpy|np|scipy|sklearn|matplotlib|pandas|dask|distributed|zarr|torch|joblib"
    r"|statsmodels|tqdm|collections|typing|pathlib|os|abc)"
)
nitpick_ignore_regex = [
    ("py:.*", _EXTERNAL + r"(\..*)?"),
    # Private modules and classes (a path component starting with "_") have no page;
    # docstrings may still name them for readers of the source.
    ("py:.*", r"(.*\.)?_[A-Za-z]\w*(\..*)?"),
]

# -- autodoc / autosummary / numpydoc ----------------------------------------------
autosummary_generate = True
autosummary_imported_members = False
autodoc_typehints = "none"  # the numpydoc sections carry the types
autodoc_member_order = "groupwise"
# Members are listed by the class template (docs/_templates/autosummary/class.rst);
# module pages show the module docstring only, so nothing is described twice.
autodoc_default_options: dict[str, object] = {}
numpydoc_show_class_members = False  # autodoc lists the members (see the template)
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_attributes_as_param_list = True
numpydoc_validation_checks: set[str] = set()

# -- MyST (the markdown pages under docs/) -----------------------------------------
# dollarmath: $...$ and $$...$$ formulas; amsmath: \begin{align} ... environments.
# Both render with MathJax (sphinx.ext.mathjax).
myst_enable_extensions = ["deflist", "colon_fence", "dollarmath", "amsmath"]
myst_heading_anchors = 3

# -- sphinx-gallery ----------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r".*\.py$",  # run every example (at small sizes, see above)
    "ignore_pattern": r"__init__\.py",
    "within_subsection_order": "FileNameSortKey",
    "doc_module": ("steinlatent",),
    "reference_url": {"steinlatent": None},
    "backreferences_dir": "api/generated/backreferences",
    "image_scrapers": ("matplotlib",),
    "min_reported_time": 1,
    "download_all_examples": False,
    "show_memory": False,
    "remove_config_comments": True,
}

# -- HTML --------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"steinlatent {release}"
html_theme_options = {
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "header_links_before_dropdown": 6,
    "secondary_sidebar_items": ["page-toc", "sourcelink"],
}
html_show_sourcelink = True
html_static_path: list[str] = []

# -- intersphinx (optional: needs the network) --------------------------------------
if os.environ.get("STEINLATENT_DOCS_INTERSPHINX") == "1":
    extensions.append("sphinx.ext.intersphinx")
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable", None),
        "scipy": ("https://docs.scipy.org/doc/scipy", None),
        "sklearn": ("https://scikit-learn.org/stable", None),
        "matplotlib": ("https://matplotlib.org/stable", None),
    }


# -- Hooks ---------------------------------------------------------------------------
import re  # noqa: E402

# The docstrings are written to read well as plain text (``help()``): fitted attributes
# as ``name_`` and absolute values as ``|x|``. In reStructuredText the first is a
# hyperlink reference and the second a substitution, both errors. Escape the two, and
# nothing else, outside inline literals and code; STEINLATENT_DOCS_STRICT=1 turns this
# off to see the raw docstrings' errors.
_LITERAL = re.compile(r"(``.+?``|`[^`]+`|:[a-z:]+:`[^`]+`)")
_TRAILING_UNDERSCORE = re.compile(r"(?<![\\\w`*])([A-Za-z][A-Za-z0-9_]*?)_(?![\w`])")
_BAR = re.compile(r"(?<!\\)\|")


def _escape_plain(text: str) -> str:
    parts = _LITERAL.split(text)
    for i in range(0, len(parts), 2):  # even indices: outside literals and roles
        parts[i] = _BAR.sub(r"\\|", _TRAILING_UNDERSCORE.sub(r"\1\\_", parts[i]))
    return "".join(parts)


def _escape_docstring(app, what, name, obj, options, lines):
    if os.environ.get("STEINLATENT_DOCS_STRICT") == "1":
        return
    in_code, code_indent = False, 0
    for i, line in enumerate(lines):
        stripped = line.lstrip()
        indent = len(line) - len(stripped)
        if in_code:
            if stripped and indent <= code_indent:
                in_code = False
            else:
                continue
        if stripped.startswith((">>>", "...", "| ", "+-", "+=")):
            continue  # doctest lines, line blocks and grid-table rows stay as written
        if stripped.startswith(".. ") or stripped.endswith("::"):
            in_code, code_indent = True, indent
            if stripped.startswith(".. "):
                continue
        lines[i] = _escape_plain(line)


_EXTERNAL_MODULES = ("sklearn", "torch", "builtins", "abc")


def _skip_external_member(app, what, name, obj, skip, options):
    """Skip members inherited from scikit-learn, torch or Python (other sites' docs)."""
    module = getattr(obj, "__module__", None) or ""
    if module.split(".")[0] in _EXTERNAL_MODULES:
        return True
    return None


def _title_results_page(app, docname, source):
    """Give the generated tables under results/ a title and H1-based headings."""
    if not docname.startswith("results/"):
        return
    text = source[0]
    levels = [len(m.group(1)) for m in re.finditer(r"^(#+) ", text, re.MULTILINE)]
    if levels and min(levels) == 1 and text.lstrip().startswith("# "):
        return
    shift = 1 - min(levels) + 1 if levels else 0  # demote or promote to start at H2
    if shift:
        text = re.sub(r"^(#+) ", lambda m: "#" * max(1, len(m.group(1)) + shift) + " ",
                      text, flags=re.MULTILINE)
    title = docname.split("/", 1)[1].replace("/", ": ").replace("_", " ")
    source[0] = f"# {title}\n\n(generated file `docs/{docname}.md`)\n\n{text}"


def setup(app):
    app.connect("autodoc-process-docstring", _escape_docstring, priority=100)
    app.connect("autodoc-skip-member", _skip_external_member)
    app.connect("source-read", _title_results_page)
