"""Extract the submissions of a zip archive (an LMS or Gradescope export) without trusting it.

Members with absolute paths, `..` components or symlink modes are refused, not extracted;
only .ipynb and .py files are written, each checked to land inside the destination, and
the bytes actually written are counted against a cap (headers can lie about sizes).
"""

from __future__ import annotations

import re
import shutil
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

SUBMISSION_SUFFIXES = (".ipynb", ".py")
SKIP_PARTS = {"__MACOSX", ".ipynb_checkpoints", "__pycache__", ".git"}
MAX_MEMBERS = 20_000
CHUNK = 1 << 20


@dataclass
class Extraction:
    files: list[tuple[str, Path]] = field(default_factory=list)  # (member name, extracted path)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (member name, reason)


def _refusal(name: str, info: zipfile.ZipInfo) -> str | None:
    if stat.S_ISLNK(info.external_attr >> 16):
        return "is a symbolic link; archive links are never followed"
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "has an absolute path; it would be written outside the extraction folder"
    if ".." in PurePosixPath(name).parts:
        return "has a '..' path component; it would be written outside the extraction folder"
    if "\x00" in name:
        return "has a NUL character in its name"
    return None


def _skipped(parts: tuple[str, ...]) -> bool:
    return any(part in SKIP_PARTS or part.startswith(".") for part in parts)


def extract_submissions(archive: Path, dest: Path, max_bytes: int) -> Extraction:
    """Write the archive's .ipynb/.py members under `dest`; raise zipfile.BadZipFile if it is no zip."""
    result = Extraction()
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    written = 0
    with zipfile.ZipFile(archive) as bundle:
        members = bundle.infolist()
        if len(members) > MAX_MEMBERS:
            raise zipfile.BadZipFile(f"{len(members)} members (at most {MAX_MEMBERS})")
        for info in members:
            name = info.filename.replace("\\", "/")  # zips made on Windows
            reason = _refusal(name, info)
            if reason:
                result.refused.append((info.filename, reason))
                continue
            parts = PurePosixPath(name).parts
            if info.is_dir() or not parts or _skipped(parts) or not name.lower().endswith(SUBMISSION_SUFFIXES):
                continue
            target = root.joinpath(*parts)
            if root not in target.resolve().parents:  # belt and braces after the checks above
                result.refused.append((info.filename, "would be written outside the extraction folder"))
                continue
            if written + info.file_size > max_bytes:
                result.refused.append((info.filename, f"the archive's extracted size would exceed {max_bytes // 2**20} MiB"))
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with bundle.open(info) as source, open(target, "wb") as sink:
                    while chunk := source.read(CHUNK):
                        written += len(chunk)
                        if written > max_bytes:
                            raise OverflowError
                        sink.write(chunk)
            except OverflowError:  # declared small, inflated large: a zip bomb
                target.unlink(missing_ok=True)
                result.refused.append((info.filename, f"the archive's extracted size would exceed {max_bytes // 2**20} MiB"))
                written = max_bytes
                continue
            except (RuntimeError, zipfile.BadZipFile, OSError, NotImplementedError) as error:  # encrypted, corrupt
                target.unlink(missing_ok=True)
                result.refused.append((info.filename, f"cannot be extracted: {error}"))
                continue
            result.files.append((name, target))
    return result


def remove(dest: Path) -> None:
    shutil.rmtree(dest, ignore_errors=True)
