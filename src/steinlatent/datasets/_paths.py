"""Where the data sets live: one resolution rule shared by every loader.

Order of precedence (first hit wins):

1. the ``data_dir`` argument of the loader;
2. the environment variable ``STEINLATENT_DATA``;
3. ``../shared/data`` next to the project root (the folder holding ``pyproject.toml``
   found by walking up from this file, i.e. ``src/steinlatent/datasets/../../..``);
4. ``../shared/data`` relative to the current working directory.

An explicit argument or environment variable is never silently replaced by a default:
if it names a folder that does not exist, the loader says so.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = ["get_data_dir", "DATA_ENV_VAR", "read_checksums", "verify_checksum"]

#: Environment variable that points the loaders at a data folder.
DATA_ENV_VAR = "STEINLATENT_DATA"

#: Name of the checksum file (``sha256sum`` format) expected in the data root.
CHECKSUM_FILE = "SHA256SUMS"


def _project_root() -> Path | None:
    """The nearest ancestor of this file that holds ``pyproject.toml`` (a source checkout)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").is_file():
            return parent
    return None


def _default_candidates() -> list[Path]:
    candidates = []
    root = _project_root()
    if root is not None:
        candidates.append(root.parent / "shared" / "data")
    candidates.append(Path.cwd().parent / "shared" / "data")
    return candidates


def get_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """Return the data root, following argument > ``$STEINLATENT_DATA`` > defaults.

    Parameters
    ----------
    data_dir : str, path-like or None, default=None
        Folder holding the data sets (e.g. with sub-folders ``mnist/`` and
        ``m1_patchseq/``). None: use ``$STEINLATENT_DATA``, then ``../shared/data``
        beside the project root, then ``../shared/data`` relative to the working
        directory.

    Returns
    -------
    pathlib.Path
        An existing folder (absolute path).

    Raises
    ------
    FileNotFoundError
        If the argument or the environment variable names a missing folder, or no
        default location exists; the message lists every place that was tried.

    Examples
    --------
    >>> import os, tempfile
    >>> from steinlatent.datasets import get_data_dir
    >>> with tempfile.TemporaryDirectory() as d:
    ...     get_data_dir(d) == __import__("pathlib").Path(d).resolve()
    True
    """
    if data_dir is not None:
        path = Path(data_dir).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(
                f"data_dir={str(data_dir)!r} is not an existing folder. Pass the folder that "
                f"holds the data sets (or set {DATA_ENV_VAR})."
            )
        return path.resolve()
    env = os.environ.get(DATA_ENV_VAR)
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(
                f"The environment variable {DATA_ENV_VAR}={env!r} does not name an existing "
                "folder. Point it at the folder that holds the data sets, or unset it."
            )
        return path.resolve()
    candidates = _default_candidates()
    for path in candidates:
        if path.is_dir():
            return path.resolve()
    tried = ", ".join(str(p) for p in candidates)
    raise FileNotFoundError(
        f"No data folder found (tried {tried}). Pass data_dir=... or set the environment "
        f"variable {DATA_ENV_VAR} to the folder that holds the data sets."
    )


def _find_subdir(root: Path, name: str, markers: tuple[str, ...]) -> Path:
    """``root/name`` if it exists, else ``root`` itself when it holds one of ``markers``.

    Lets a user pass either the data root or the data set's own folder.
    """
    if (root / name).is_dir():
        return root / name
    if any((root / m).is_file() for m in markers):
        return root
    return root / name


def read_checksums(folder: Path) -> dict[Path, str] | None:
    """Parse the ``SHA256SUMS`` file of the first of ``folder`` and its parent that has one.

    Returns a mapping from absolute file path to lowercase hex digest, or None when
    neither folder has a checksum file. Lines follow ``sha256sum`` output:
    ``<64 hex digits><space><space or *><relative path>``.
    """
    for base in (folder, folder.parent):
        sums = base / CHECKSUM_FILE
        if sums.is_file():
            table: dict[Path, str] = {}
            for raw in sums.read_text().splitlines():
                line = raw.strip()
                if not line or line.startswith("#"):
                    continue
                digest, _, rel = line.partition(" ")
                rel = rel.lstrip(" *")
                if len(digest) != 64 or not rel:
                    raise ValueError(f"Malformed line in {sums}: {raw!r}")
                table[(base / rel).resolve()] = digest.lower()
            return table
    return None


def corrupt_file_error(path: os.PathLike | str, problem: str) -> ValueError:
    """The error every loader raises for a data file it cannot parse.

    An empty, truncated or corrupt download is the usual cause; the message names the
    file and says how to check it against the data folder's ``SHA256SUMS``.
    """
    return ValueError(
        f"Could not read {path}: {problem}. The file is empty, truncated or corrupt: check "
        f"it against the {CHECKSUM_FILE} file of the data folder (run 'sha256sum -c "
        f"{CHECKSUM_FILE}' there) and download it again."
    )


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_checksum(path: Path, table: dict[Path, str] | None) -> bool:
    """Check ``path`` against ``table`` (from :func:`read_checksums`).

    Returns True when checked, False when the file is not listed (nothing to compare).

    Raises
    ------
    ValueError
        If the SHA-256 digest differs from the listed one.
    """
    if table is None:
        return False
    expected = table.get(path.resolve())
    if expected is None:
        return False
    actual = _sha256(path)
    if actual != expected:
        raise ValueError(
            f"Checksum mismatch for {path}: SHA-256 {actual}, expected {expected} (from "
            f"{CHECKSUM_FILE}). The file is corrupt or a different version; replace it, or "
            "pass verify=False to load it anyway."
        )
    return True
