"""Every code block of the README and of the documentation pages runs.

The blocks of ``README.md`` and of every page under ``docs/`` (Markdown and reST,
``literalinclude`` files included) are collected in page order and checked by kind:

* ``python`` blocks run, in order, in one namespace per page, so a page reads as one
  script; any exception fails the page.
* ``pycon`` blocks (and any block that starts with ``>>>``) run as doctests in the same
  namespace: the outputs a page shows are the outputs the code prints.
* ``bash`` / ``console`` blocks (and unlabelled blocks whose lines start like commands):
  cheap commands run (``steinlatent --help``, ``steinlatent --version``); long ones
  (fits, studies, benchmarks, the docs build) are checked without running them: the
  script or module exists and its argparse parser accepts the arguments, so a renamed
  option or a moved script fails here. Installing, creating virtual environments,
  serving a folder and the test suite itself are checked for their package extras
  and otherwise not run (:data:`NOT_RUN`).
* Other blocks (``text`` output, tables, ``toml``) are not code.

Run one page with ``pytest tests/test_doc_blocks.py -k beyond``.
"""

from __future__ import annotations

import argparse
import contextlib
import doctest
import io
import os
import re
import runpy
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
# Folders under docs/ that a build writes, and the autosummary templates (not pages).
NOT_PAGES = ("_build", "auto_examples", "generated", "_templates")

PYTHON = {"python", "py", "python3", "ipython", "ipython3"}
PYCON = {"pycon", "doctest"}
SHELL = {"bash", "sh", "shell", "console", "shell-session", "zsh"}

# Pages whose blocks do not run yet, with the reason: only a page that is being
# rewritten. Strict: once the page runs, its entry must go. (Blocks that need data a
# fresh machine lacks would be listed the same way; there are none today.)
PENDING: dict[str, str] = {}

# Commands that a documentation test must not run, with the reason; their arguments are
# still checked where a parser exists (pip extras, sphinx options).
NOT_RUN = {
    "venv": "creates a virtual environment",
    "pip": "installs packages (needs the network)",
    "pytest": "the test suite that runs this test",
    "http.server": "serves a folder until stopped",
}

_COMMAND_START = re.compile(
    r"^(?:\$ )?(?:[A-Z_]+=\S+ )*(?:(?:nice|time|timeout)(?: -n)?(?: \d+\w?)? )?"
    r"(?:\S*/)?(?:python3?|pip3?|steinlatent|pytest|sphinx-build)(?:\s|$)"
)


@dataclass
class Block:
    page: str
    line: int
    lang: str  # "python", "pycon", "shell" or "text"
    code: str

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


# ------------------------------------------------------------------ collecting blocks
def _pages() -> list[Path]:
    pages = [ROOT / "README.md"]
    for path in sorted(DOCS.rglob("*")):
        rel = path.relative_to(DOCS).parts
        if path.suffix in (".md", ".rst") and not any(p in NOT_PAGES for p in rel):
            pages.append(path)
    return pages


def _page_id(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _kind(lang: str, code: str) -> str:
    lang = lang.strip().lower()
    if code.lstrip().startswith(">>>") or lang in PYCON:
        return "pycon"
    if lang in PYTHON:
        return "python"
    if lang in SHELL:
        return "shell"
    if not lang and any(_COMMAND_START.match(ln.strip()) for ln in code.splitlines()):
        return "shell"  # an unlabelled block of commands is still checked
    return "text"


def _include(page: Path, target: str, options: dict[str, str]) -> tuple[str, str]:
    path = (DOCS / target.lstrip("/")) if target.startswith("/") else page.parent / target
    code = path.read_text(encoding="utf-8")
    lang = options.get("language", {".py": "python"}.get(path.suffix, ""))
    return lang, code


def _markdown_blocks(page: Path) -> list[Block]:
    from markdown_it import MarkdownIt

    blocks = []
    for tok in MarkdownIt("commonmark").parse(page.read_text(encoding="utf-8")):
        if tok.type not in ("fence", "code_block"):
            continue
        line = tok.map[0] + 1 if tok.map else 0
        info, code = tok.info.strip(), tok.content
        m = re.fullmatch(r"\{([\w-]+)\}\s*(.*)", info)
        if m:  # a MyST directive
            name, arg = m.groups()
            options = dict(re.findall(r"^:(\w[\w-]*):\s*(.*)$", code, flags=re.MULTILINE))
            body = re.sub(r"^(:\w[\w-]*:.*\n)+", "", code)
            if name in ("code-block", "code", "sourcecode", "code-cell"):
                info, code = arg, body
            elif name == "literalinclude":
                info, code = _include(page, arg, options)
            else:
                continue  # toctree, note, ... are not code
        blocks.append(Block(_page_id(page), line, _kind(info.split()[0] if info else "", code),
                            code))
    return blocks


def _rst_blocks(page: Path) -> list[Block]:
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0

    def body(start: int) -> tuple[str, dict[str, str], int]:
        """Options and the indented content after a directive line; the next index."""
        j, options = start, {}
        while j < len(lines) and re.match(r"^\s+:(\w[\w-]*):\s*(.*)$", lines[j]):
            k, v = re.match(r"^\s+:(\w[\w-]*):\s*(.*)$", lines[j]).groups()
            options[k] = v
            j += 1
        content = []
        while j < len(lines) and (not lines[j].strip() or lines[j].startswith((" ", "\t"))):
            content.append(lines[j])
            j += 1
        text = "\n".join(content)
        indent = min((len(s) - len(s.lstrip()) for s in content if s.strip()), default=0)
        return "\n".join(s[indent:] for s in text.splitlines()).strip("\n") + "\n", options, j

    while i < len(lines):
        line = lines[i]
        m = re.match(r"^\s*\.\. (code-block|code|sourcecode|literalinclude|doctest)::\s*(.*)$",
                     line)
        if m:
            name, arg = m.groups()
            code, options, j = body(i + 1)
            if name == "literalinclude":
                lang, code = _include(page, arg.strip(), options)
            else:
                lang = "pycon" if name == "doctest" else arg.strip()
            blocks.append(Block(_page_id(page), i + 1, _kind(lang, code), code))
            i = j
            continue
        if line.rstrip().endswith("::") and not line.lstrip().startswith(".."):
            code, _, j = body(i + 1)  # a literal block
            blocks.append(Block(_page_id(page), i + 2, _kind("", code), code))
            i = j
            continue
        if line.lstrip().startswith(">>>"):  # a doctest paragraph
            j = i
            while j < len(lines) and lines[j].strip():
                j += 1
            blocks.append(Block(_page_id(page), i + 1, "pycon", "\n".join(lines[i:j]) + "\n"))
            i = j
            continue
        i += 1
    return blocks


def collect(page: Path) -> list[Block]:
    return _markdown_blocks(page) if page.suffix == ".md" else _rst_blocks(page)


# ------------------------------------------------------------------ shell commands
class _Parsed(BaseException):
    """Raised by the patched ``parse_args``: the arguments parsed, stop the program."""


@contextlib.contextmanager
def _parse_only(argv0: str, args: list[str]):
    """Run a program until its argparse parser has read ``args``, then stop it."""
    original = argparse.ArgumentParser.parse_args

    def parse_args(self, args=None, namespace=None):
        original(self, args, namespace)  # a bad argument exits with status 2 here
        raise _Parsed

    saved_argv, saved_path = sys.argv[:], sys.path[:]
    sys.argv = [argv0, *args]
    argparse.ArgumentParser.parse_args = parse_args
    try:
        yield
    finally:
        argparse.ArgumentParser.parse_args = original
        sys.argv[:], sys.path[:] = saved_argv, saved_path


def _check_program(run, argv0: str, args: list[str]) -> str | None:
    """None if ``run()`` got as far as parsing ``args``; else what went wrong."""
    err = io.StringIO()
    try:
        with _parse_only(argv0, args), contextlib.redirect_stderr(err), \
                contextlib.redirect_stdout(io.StringIO()):
            run()
    except _Parsed:
        return None
    except SystemExit as exc:
        return f"{argv0} {shlex.join(args)}: exit {exc.code}: {err.getvalue().strip()[-500:]}"
    return f"{argv0} {shlex.join(args)}: finished without parsing arguments"


def _extras() -> set[str]:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    section = text.split("[project.optional-dependencies]", 1)[1].split("\n[", 1)[0]
    return set(re.findall(r"^(\w[\w-]*)\s*=", section, flags=re.MULTILINE))


def _pip(args: list[str]) -> str | None:
    if not args or args[0] != "install":
        return f"pip {shlex.join(args)}: only 'pip install' is documented"
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    for req in args[1:]:
        if req.startswith("-"):
            continue
        m = re.fullmatch(r"\.(?:\[([\w,-]+)\])?", req)
        if m:
            unknown = set((m.group(1) or "").split(",")) - {""} - _extras()
            if unknown:
                return f"pip install {req}: no extra {sorted(unknown)} in pyproject.toml"
        else:
            name = re.split(r"[<>=\[]", req)[0]
            if f'"{name}' not in pyproject:
                return f"pip install {req}: not a dependency named in pyproject.toml"
    return None


def _steinlatent(args: list[str]) -> str | None:
    from steinlatent.cli import build_parser, main

    if {"--help", "-h", "--version"} & set(args):  # cheap: run it
        with contextlib.redirect_stdout(io.StringIO()) as out:
            status = main(args)
        return None if status == 0 and out.getvalue() else f"steinlatent {shlex.join(args)}"
    return _check_program(lambda: build_parser().parse_args(args), "steinlatent", args)


def _script(path: str, args: list[str]) -> str | None:
    script = ROOT / path
    if not script.is_file():
        return f"python {path}: no such script in the repository"
    if "argparse" not in script.read_text(encoding="utf-8"):
        # Nothing to parse: a script without options must be called without any.
        return f"python {path} {shlex.join(args)}: the script takes no options" if args \
            else None

    def run():
        sys.path.insert(0, str(script.parent))  # as `python script.py` does
        runpy.run_path(str(script), run_name="__main__")

    return _check_program(run, path, args)


def _module(module: str, args: list[str]) -> str | None:
    if module == "steinlatent.cli":
        return _steinlatent(args)
    if module.startswith("steinlatent."):
        return _check_program(lambda: runpy.run_module(module, run_name="__main__"),
                              module, args)
    if module == "sphinx":
        from sphinx.cmd.build import get_parser

        return _check_program(lambda: get_parser().parse_args(args), "sphinx", args)
    if module == "pip":
        return _pip(args)
    if module in NOT_RUN:
        return None
    return f"python -m {module}: no rule in tests/test_doc_blocks.py for this command"


def check_command(tokens: list[str]) -> str | None:
    """Check one simple command (tokens without operators); None when it is fine."""
    while tokens and re.fullmatch(r"[A-Za-z_]\w*=\S*", tokens[0]):
        tokens = tokens[1:]  # OMP_NUM_THREADS=1 ...
    while tokens and tokens[0] in ("nice", "time", "timeout"):
        tokens = tokens[1:]
        if tokens and tokens[0] == "-n":
            tokens = tokens[2:]
        elif tokens and re.fullmatch(r"\d+[smh]?", tokens[0]):
            tokens = tokens[1:]
    if not tokens or tokens[0] in ("cd", "export"):
        return None
    prog, args = Path(tokens[0]).name, tokens[1:]  # .venv/bin/python -> python
    if prog in ("python", "python3"):
        if args[:1] == ["-m"]:
            return _module(args[1], args[2:])
        return _script(args[0], args[1:])
    if prog == "steinlatent":
        return _steinlatent(args)
    if prog == "sphinx-build":
        return _module("sphinx", args)
    if prog in ("pip", "pip3"):
        return _pip(args)
    if prog == "pytest":
        return None  # NOT_RUN["pytest"]
    return f"{prog}: no rule in tests/test_doc_blocks.py for this command"


def shell_commands(code: str) -> list[list[str]]:
    """Simple commands of a shell block: continuations joined, comments and prompts
    dropped, split at ``&&``, ``||``, ``;`` and pipes; console output lines skipped."""
    text = code.replace("\\\n", " ")
    lines = text.splitlines()
    if any(ln.startswith("$ ") for ln in lines):  # a console session: prompts only
        lines = [ln[2:] for ln in lines if ln.startswith("$ ")]
    commands = []
    for line in lines:
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        current: list[str] = []
        for token in lexer:
            if token in ("&&", "||", ";", "|", "&"):
                commands.append(current)
                current = []
            else:
                current.append(token)
        commands.append(current)
    return [c for c in commands if c]


# ------------------------------------------------------------------ running a page
def run_page(blocks: list[Block]) -> list[str]:
    """Run the blocks of one page in order; the list of failures (empty: all ran)."""
    import matplotlib

    matplotlib.use("Agg")
    namespace: dict = {"__name__": "__doc_page__"}
    failures = []
    for block in blocks:
        if block.lang == "python":
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    exec(compile(block.code, block.where, "exec"), namespace)
            except Exception as exc:  # every error of a documented block is a failure
                failures.append(f"{block.where}: {type(exc).__name__}: {exc}")
        elif block.lang == "pycon":
            test = doctest.DocTestParser().get_doctest(block.code, namespace, block.where,
                                                       block.page, block.line - 1)
            runner = doctest.DocTestRunner(
                optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
            report = io.StringIO()
            result = runner.run(test, out=report.write, clear_globs=False)
            namespace.update(test.globs)  # DocTest works on a copy; later blocks need it
            if result.failed:
                failures.append(f"{block.where}: doctest failed\n{report.getvalue()[-2000:]}")
        elif block.lang == "shell":
            for tokens in shell_commands(block.code):
                problem = check_command(tokens)
                if problem:
                    failures.append(f"{block.where}: {problem}")
    return failures


PAGES = _pages()


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_code_blocks_of_the_page_run(page, tmp_path, monkeypatch, request):
    pytest.importorskip("markdown_it", reason='needs the docs extra: pip install -e ".[docs]"')
    pytest.importorskip("matplotlib")
    if _page_id(page) in PENDING:
        request.applymarker(pytest.mark.xfail(reason=PENDING[_page_id(page)], strict=True))
    monkeypatch.chdir(tmp_path)  # files a block writes land here
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.syspath_prepend(str(ROOT))
    failures = run_page(collect(page))
    assert not failures, "\n".join(failures)


def test_commands_are_checked_relative_to_the_repository(monkeypatch, tmp_path):
    """The checks reject what they should: a moved script, a renamed option, an extra
    that does not exist, a command without a rule."""
    monkeypatch.chdir(tmp_path)
    assert check_command(["python", "benchmarks/no_such_script.py"])
    assert check_command(["steinlatent", "fit", "--no-such-option"])
    assert check_command(["steinlatent", "reproduce", "simulation", "--reps", "many"])
    assert check_command(["pip", "install", "-e", ".[plot,no_such_extra]"])
    assert check_command(["rm", "-rf", "build"])
    assert check_command(["python", "-m", "sphinx", "--no-such-option", "a", "b"])
    assert check_command(shlex.split("OMP_NUM_THREADS=1 nice -n 10 python "
                                     "benchmarks/refine_study.py --no-such-option")) \
        is not None
    # ... and accept the documented forms.
    assert check_command(shlex.split("OMP_NUM_THREADS=1 nice -n 10 python "
                                     "benchmarks/refine_study.py --reps 20 --p 30")) is None
    assert check_command(["steinlatent", "--version"]) is None
    assert check_command(shlex.split('.venv/bin/pip install -e ".[plot]"')) is None
    assert check_command(shlex.split("python -m sphinx -W -b html docs build/docs/html")) \
        is None


def _recommended_estimator() -> str:
    """The estimator that the README's "What to use" paragraph names first."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    paragraph = readme.split("**What to use.**", 1)[1].split("\n\n", 1)[0]
    return re.search(r"`(\w+)`", paragraph).group(1)


def test_the_first_example_uses_the_recommended_estimator():
    """The landing page and the getting-started page open with the estimator that the
    README recommends first. Both include docs/_snippets/first_fit.pycon: rename it there."""
    name = _recommended_estimator()
    for page in (DOCS / "index.rst", DOCS / "user_guide" / "getting_started.md"):
        first = next(b for b in collect(page) if b.lang in ("python", "pycon"))
        assert re.search(rf"\b{name}\(", first.code), (
            f"{_page_id(page)}'s first example does not fit {name}, the estimator the "
            "README recommends first: edit docs/_snippets/first_fit.pycon"
        )


def test_pages_are_collected():
    """The collector finds the blocks (a parser change must not make this test vacuous)."""
    kinds = {}
    for page in PAGES:
        for block in collect(page):
            kinds[block.lang] = kinds.get(block.lang, 0) + 1
    assert kinds.get("python", 0) >= 10 and kinds.get("shell", 0) >= 10, kinds
    index = [b for b in collect(DOCS / "index.rst") if b.lang in ("python", "pycon")]
    assert index, "the landing page has no runnable example"


if __name__ == "__main__":  # pragma: no cover - a quick report while editing pages
    os.environ.setdefault("MPLBACKEND", "Agg")
    for p in PAGES:
        print(p, run_page(collect(p)))
