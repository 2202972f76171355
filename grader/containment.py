"""What the sandbox hides and binds back, decided in the grader from where things are installed.

The launcher (grader/launcher.py) covers every path in `hide` with an empty tmpfs and binds
back every path in `expose` that lies under one: the Python installation and its site-packages
stay reachable; the grader's packages, its source checkout, the submission's folder (other
students' files), home folders and runtime sockets do not.
"""

from __future__ import annotations

import os
import site
import sys
from pathlib import Path

import grader
import reference
import tasks

ALWAYS_HIDDEN = ("/root", "/home", "/run", "/var/run", "/srv", "/mnt", "/media", "/opt", "/var/lib", "/var/log")
NOBODY = 65534


PACKAGE_NAMES = ("grader", "reference", "tasks")


def package_paths() -> list[Path]:
    """The grader's own code: each package, or its source checkout when it runs from one, and
    every other copy on the path (a checkout run with `python -m` beside an installed copy)."""
    paths = []
    for package in (grader, reference, tasks):
        folder = Path(package.__file__).resolve().parent
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


def python_paths() -> list[str]:
    """What the interpreter needs: its prefixes, site-packages, the real executable's folder, and
    every folder on sys.path (a .pth file may add one) that does not hold the grader's own code."""
    own = package_paths()
    prefixes = [Path(prefix).resolve() for prefix in (sys.prefix, sys.base_prefix)]

    def allowed(entry: Path) -> bool:
        if any(entry == prefix or prefix in entry.parents for prefix in prefixes):
            return True  # inside the interpreter's own installation (a venv may sit in the checkout)
        return not any(entry == package or package in entry.parents or entry in package.parents
                       for package in own)

    on_path = [entry for entry in sys.path if entry and Path(entry).is_dir() and allowed(Path(entry).resolve())]
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             str(Path(os.path.realpath(sys.executable)).parent.parent), *site.getsitepackages(), *on_path}
    return sorted(str(Path(path).resolve()) for path in paths if path and Path(path).is_dir())


def hidden_paths(submission: Path) -> list[str]:
    hidden = {*ALWAYS_HIDDEN, *(str(path) for path in package_paths()),
              str(Path(submission).resolve().parent), os.getcwd()}
    # Covering "/" itself would hide everything; the rest is read-only anyway.
    return sorted(path for path in hidden if path not in ("/", ""))


def view_config(submission: Path) -> dict:
    """The part of the launcher's configuration that describes the filesystem view."""
    return {"hide": hidden_paths(submission), "expose": python_paths(), "uid": NOBODY, "gid": NOBODY}
