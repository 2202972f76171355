"""Clone a student's git repository (a local path or a URL) at an optional ref, safely.

No prompts (a private URL fails instead of hanging), symlinks checked out as plain files,
and a ref or URL that looks like an option is refused. Whatever the operator's git config
says, no hook runs (core.hooksPath), no submodule is fetched, no LFS object is downloaded
(its filter passes the pointer through), and no fsmonitor or other helper is started.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from grader.core.i18n import _

CLONE_TIMEOUT = 300
_URL = re.compile(r"^(?:https?|ssh|git|file)://|^[\w.-]+@[\w.-]+:")


class GitError(Exception):
    pass


def is_url(text: str) -> bool:
    return bool(_URL.match(text))


def is_repository(path: Path) -> bool:
    return path.is_dir() and (path / ".git").exists()


def repository_name(source: str) -> str:
    """`https://host/org/alice-dli.git` -> alice-dli; `/x/bob/` -> bob."""
    name = re.split(r"[/:]", source.rstrip("/"))[-1]
    return name[:-4] if name.endswith(".git") else name


# -c settings that override the operator's config for every git command the batch runs
SAFE_CONFIG = (
    "core.symlinks=false",  # a committed link becomes a small text file, never a path out of the clone
    "protocol.ext.allow=never",
    f"core.hooksPath={os.devnull}",  # no post-checkout or other hook, from any config
    "core.fsmonitor=false",
    "submodule.recurse=false",
    "fetch.recurseSubmodules=false",
    "filter.lfs.process=",  # LFS: the pointer file stays as it is; nothing is downloaded
    "filter.lfs.smudge=cat",
    "filter.lfs.required=false",
)


def _git(*args: str, cwd: Path | None = None) -> str:
    env = {
        **os.environ,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "/bin/false",
        "GCM_INTERACTIVE": "never",
        "GIT_LFS_SKIP_SMUDGE": "1",
    }
    config = [part for setting in SAFE_CONFIG for part in ("-c", setting)]
    done = subprocess.run(
        ["git", *config, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=CLONE_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        if not lines:
            raise GitError(
                _("git {command} failed with exit code {code}").format(command=args[0], code=done.returncode)
            )
        # git's own words are quoted as a value: they are in git's language, not the grade's
        raise GitError(
            _("git {command} failed with exit code {code}; it said {line}").format(
                command=args[0], code=done.returncode, line=repr(lines[-1][:300])
            )
        )
    return done.stdout.strip()


def clone(source: str, dest: Path, ref: str | None = None) -> str:
    """Clone `source` into `dest`, check out `ref` (branch, tag or commit); return the commit."""
    if source.startswith("-") or (ref or "").startswith("-"):
        raise GitError(_("a repository or ref may not start with '-'"))
    try:
        _git("clone", "--quiet", "--no-hardlinks", "--no-recurse-submodules", "--", source, str(dest))
        if ref:
            for candidate in (ref, f"origin/{ref}"):
                try:
                    commit = _git("rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}", cwd=dest)
                    break
                except GitError:
                    continue
            else:
                raise GitError(_("no branch, tag or commit named {ref}").format(ref=repr(ref)))
            _git("checkout", "--quiet", "--detach", commit, cwd=dest)
        return _git("rev-parse", "HEAD", cwd=dest)
    except subprocess.TimeoutExpired:
        raise GitError(_("git took longer than {seconds} s").format(seconds=CLONE_TIMEOUT)) from None
    except FileNotFoundError:
        raise GitError(_("git is not installed")) from None
