"""What the sandbox may see, decided in the grader from where things are installed.

The launcher (grader/sandbox/launcher.py) builds the child's filesystem from an empty root: only the
system's libraries, a few named files, and the paths in `expose` (the Python installation:
its prefixes' bin and lib folders, site-packages, the path) are bound in, read-only. Every path
in `hide` that lies inside one of them (the grader's packages installed in site-packages, a
checkout on the path) is covered by an empty tmpfs; the Landlock fallback grants the same list
with the same paths left out. Nothing else exists for the child: other students' files, other
checkouts, /autograder, /srv, home folders and runtime sockets are simply not there.
"""

from __future__ import annotations

import importlib.util
import os
import site
import sys
import tempfile
from pathlib import Path

ALWAYS_HIDDEN = ("/root", "/home", "/run", "/var/run", "/srv", "/mnt", "/media", "/opt", "/var/lib", "/var/log")
# Each sandbox run as root gets a uid (and gid) of its own from this range, held with a lock file
# for its lifetime (see launcher.claim_identity): above systemd's container ranges, below 2^31.
SANDBOX_UIDS = (1_900_000_000, 4096)
UID_LOCK_DIRS = ("/run/dli-grade/uids", os.path.join(tempfile.gettempdir(), "dli-grade-uids"))
# The parts of a Python prefix the interpreter needs (a venv's pyvenv.cfg is bound as a file):
# the prefix whole would be /usr or /usr/local, with /usr/src, /usr/local/share and the like.
PREFIX_PARTS = ("bin", "lib", "lib32", "lib64", "pyvenv.cfg")


PACKAGE_NAMES = ("grader", "reference", "tasks")


def package_paths() -> list[Path]:
    """The grader's own code: each package, or its source checkout when it runs from one, and
    every other copy on the path (a checkout run with `python -m` beside an installed copy)."""
    paths = []
    for name in PACKAGE_NAMES:
        # Found, not imported: the sandbox sits below `tasks` and `reference` and must not import them.
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise RuntimeError(f"cannot find the grader's package {name!r} to hide it from student code")
        folder = Path(spec.origin).resolve().parent
        checkout = folder.parent
        paths.append(checkout if (checkout / "pyproject.toml").exists() else folder)
    for entry in {*sys.path, *site.getsitepackages()}:
        for name in PACKAGE_NAMES:
            copy = Path(entry or ".") / name
            if (copy / "__init__.py").is_file():
                paths.append(copy.resolve())
    # An editable install answers through a finder on sys.meta_path, not through sys.path: run
    # from one checkout, the copy it maps to (another checkout) is just as importable in the child.
    for finder in sys.meta_path:
        for name in PACKAGE_NAMES:
            try:
                spec = finder.find_spec(name, None)
            except Exception:  # a finder that cannot answer for a top-level name
                continue
            for location in (spec and spec.submodule_search_locations) or ():
                folder = Path(location).resolve()
                if (folder / "__init__.py").is_file():
                    paths.append(folder.parent if (folder.parent / "pyproject.toml").exists() else folder)
    return sorted(set(paths))


def pth_entries() -> list[str]:
    """Folders the .pth files in site-packages add to the path (the child runs `python -I`, so
    these are all it adds beside the prefix: never the grader's script folder, cwd or PYTHONPATH)."""
    entries = []
    for folder in site.getsitepackages():
        for pth in sorted(Path(folder).glob("*.pth")):
            try:
                lines = pth.read_text(errors="replace").splitlines()
            except OSError:
                continue
            entries += [
                str(Path(folder, line.strip()))
                for line in lines
                if line.strip() and not line.startswith(("#", "import ", "import\t"))
            ]
    return entries


def python_paths() -> list[str]:
    """What the interpreter needs: its prefixes' bin and lib folders, site-packages, the real
    executable's folder, and the folders .pth files add, none holding the grader's own code."""
    own = package_paths()
    prefixes = [Path(prefix).resolve() for prefix in (sys.prefix, sys.base_prefix)]

    def allowed(entry: Path) -> bool:
        if any(entry == prefix or prefix in entry.parents for prefix in prefixes):
            return True  # inside the interpreter's own installation (a venv may sit in the checkout)
        return not any(entry == package or package in entry.parents or entry in package.parents for package in own)

    on_path = [entry for entry in pth_entries() if Path(entry).is_dir() and allowed(Path(entry).resolve())]
    roots = {
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        sys.base_exec_prefix,
        str(Path(os.path.realpath(sys.executable)).parent.parent),
    }
    parts = [str(Path(root, part)) for root in roots if root for part in PREFIX_PARTS]
    paths = {*parts, str(Path(os.path.realpath(sys.executable)).parent), *site.getsitepackages(), *on_path}
    # A link (a venv's lib64 -> lib) is kept as given: the launcher recreates it and binds its target.
    return sorted(
        str(Path(path).parent.resolve() / Path(path).name) if Path(path).is_symlink() else str(Path(path).resolve())
        for path in paths
        if path and Path(path).exists()
    )


def hidden_paths(submission: Path) -> list[str]:
    hidden = {
        *ALWAYS_HIDDEN,
        *(str(path) for path in package_paths()),
        str(Path(submission).resolve().parent),
        os.getcwd(),
    }
    # Covering "/" itself would hide everything; the rest is read-only anyway.
    return sorted(path for path in hidden if path not in ("/", ""))


def uid_lock_dir() -> str:
    """Where the launcher's uid locks live: one folder for every grader on the machine."""
    for folder in UID_LOCK_DIRS:
        try:
            os.makedirs(folder, mode=0o700, exist_ok=True)
            return folder
        except OSError:
            continue
    return UID_LOCK_DIRS[-1]


def view_config(submission: Path) -> dict:
    """The part of the launcher's configuration that describes the filesystem view and identity."""
    return {
        "hide": hidden_paths(submission),
        "expose": python_paths(),
        "uid_range": list(SANDBOX_UIDS),
        "uid_lock_dir": uid_lock_dir(),
    }
