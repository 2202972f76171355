"""Extract the submissions of a zip archive (an LMS or Gradescope export) without trusting it.

Every member is judged on its own: one that is hostile or broken (a symlink, an absolute path
or `..`, an encrypted or corrupt member, a name too long or too deep, a file where another
member needs a folder, a name that collides with an earlier one once case and Unicode form are
ignored, a compression ratio no notebook has) is refused with a reason, and the others are
still extracted. Only .ipynb and .py files are written, each checked to land inside the
destination, and the bytes actually written are counted against caps (headers can lie).
"""

from __future__ import annotations

import errno
import re
import shutil
import stat
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from grader.core.i18n import _

SUBMISSION_SUFFIXES = (".ipynb", ".py")
SKIP_PARTS = {"__MACOSX", ".ipynb_checkpoints", "__pycache__", ".git"}
MAX_MEMBERS = 20_000
MAX_DEPTH = 16  # folders in a member's path; exports nest two or three
MAX_PART_BYTES = 200  # one path component (file systems allow 255; the batch adds a prefix)
MAX_NAME_BYTES = 1024  # the whole member name
MAX_MEMBER_BYTES = 200 * 2**20  # the grader's own limit on one submission
MAX_RATIO = 200  # uncompressed / compressed; notebooks and modules compress 3-20x
CHUNK = 1 << 20


@dataclass
class Extraction:
    files: list[tuple[str, Path]] = field(default_factory=list)  # (member name, extracted path)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (member name, reason)


class ArchiveRefused(zipfile.BadZipFile):
    """The whole archive is refused (not one member); the message is ours, in the grade's language."""


class _Refused(Exception):
    """A member that is not extracted; the message is the reason."""


def _refusal(name: str, info: zipfile.ZipInfo) -> str | None:
    if stat.S_ISLNK(info.external_attr >> 16):
        return _("is a symbolic link; archive links are never followed")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return _("has an absolute path; it would be written outside the extraction folder")
    if ".." in PurePosixPath(name).parts:
        return _("has a '..' path component; it would be written outside the extraction folder")
    if "\x00" in name:
        return _("has a NUL character in its name")
    return None


def _size_refusal(name: str, info: zipfile.ZipInfo) -> str | None:
    """Names and sizes no submission has, judged from the header before anything is written."""
    parts = PurePosixPath(name).parts
    if len(parts) - 1 > MAX_DEPTH:
        return _("is nested {depth} folders deep (at most {limit})").format(depth=len(parts) - 1, limit=MAX_DEPTH)
    if len(name.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
        return _("has a name longer than {limit} bytes").format(limit=MAX_NAME_BYTES)
    if any(len(part.encode("utf-8", "surrogateescape")) > MAX_PART_BYTES for part in parts):
        return _("has a file or folder name longer than {limit} bytes").format(limit=MAX_PART_BYTES)
    if info.flag_bits & 0x1:
        return _("is encrypted; submissions must not need a password")
    if info.file_size > MAX_MEMBER_BYTES:
        return _("declares {size} bytes (a submission is at most {limit} MiB)").format(
            size=info.file_size, limit=MAX_MEMBER_BYTES // 2**20
        )
    if info.file_size > CHUNK and info.file_size > MAX_RATIO * max(1, info.compress_size):
        return _bomb()
    return None


def _collision_key(name: str) -> str:
    """Equal for names a case-insensitive or normalising file system (macOS, Windows) would merge."""
    return unicodedata.normalize("NFC", name).casefold()


def _skipped(parts: tuple[str, ...]) -> bool:
    return any(part in SKIP_PARTS or part.startswith(".") for part in parts)


def _bomb() -> str:
    return _("is compressed more than {ratio} to 1; a zip bomb, not a submission").format(ratio=MAX_RATIO)


def _error_name(error: OSError) -> str:
    """The error's symbolic name (ENAMETOOLONG, ENOSPC): a value, the same in every language."""
    return errno.errorcode.get(error.errno or 0, type(error).__name__)


def _over_cap(cap: int) -> str:
    return _("the archive's extracted size would exceed {limit} MiB").format(limit=cap // 2**20)


def _write(bundle: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, budget: int, cap: int) -> int:
    """Copy one member to `target`, stopping at `budget` bytes or a ratio no submission has; return bytes written."""
    written = 0
    ratio_cap = max(CHUNK, MAX_RATIO * max(1, info.compress_size))
    try:
        with bundle.open(info) as source, open(target, "xb") as sink:
            while chunk := source.read(CHUNK):
                written += len(chunk)
                if written > budget:
                    raise _Refused(_over_cap(cap))
                if written > MAX_MEMBER_BYTES:
                    raise _Refused(
                        _("inflates beyond {limit} MiB, the limit of one submission").format(
                            limit=MAX_MEMBER_BYTES // 2**20
                        )
                    )
                if written > ratio_cap:  # declared small, inflated large
                    raise _Refused(_bomb())
                sink.write(chunk)
    except _Refused:
        target.unlink(missing_ok=True)
        raise
    except (RuntimeError, zipfile.BadZipFile, NotImplementedError, EOFError, ValueError) as error:  # encrypted, corrupt
        target.unlink(missing_ok=True)
        raise _Refused(_("cannot be extracted ({kind})").format(kind=type(error).__name__)) from None
    return written


def _extract_one(
    bundle: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, root: Path, budget: int, cap: int
) -> tuple[Path, int]:
    target = root.joinpath(*PurePosixPath(name).parts)
    try:
        if root not in target.resolve().parents:  # belt and braces after the checks above
            raise _Refused(_("would be written outside the extraction folder"))
        target.parent.mkdir(parents=True, exist_ok=True)
        return target, _write(bundle, info, target, budget, cap)
    except (FileExistsError, NotADirectoryError, IsADirectoryError):
        raise _Refused(_("needs a folder where another member is a file (or the reverse)")) from None
    except OSError as error:  # name too long for this file system, disk full, ...
        raise _Refused(_("cannot be written ({kind})").format(kind=_error_name(error))) from None


def extract_submissions(archive: Path, dest: Path, max_bytes: int) -> Extraction:
    """Write the archive's .ipynb/.py members under `dest`; raise zipfile.BadZipFile if it is no zip."""
    result = Extraction()
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    written = 0
    seen: set[str] = set()
    with zipfile.ZipFile(archive) as bundle:
        members = bundle.infolist()
        if len(members) > MAX_MEMBERS:
            raise ArchiveRefused(_("{count} members (at most {limit})").format(count=len(members), limit=MAX_MEMBERS))
        for info in members:
            name = info.filename.replace("\\", "/")  # zips made on Windows
            reason = _refusal(name, info)
            if reason:
                result.refused.append((info.filename, reason))
                continue
            parts = PurePosixPath(name).parts
            if info.is_dir() or not parts or _skipped(parts) or not name.lower().endswith(SUBMISSION_SUFFIXES):
                continue
            key = _collision_key(name)
            reason = _size_refusal(name, info)
            if not reason and key in seen:
                reason = _("has the same name as an earlier member once case and Unicode form are ignored")
            seen.add(key)
            if not reason and written + info.file_size > max_bytes:
                reason = _over_cap(max_bytes)
            if reason:
                result.refused.append((info.filename, reason))
                continue
            try:
                target, size = _extract_one(bundle, info, name, root, max_bytes - written, max_bytes)
            except _Refused as refusal:
                result.refused.append((info.filename, str(refusal)))
                continue
            written += size
            result.files.append((name, target))
    return result


def remove(dest: Path) -> None:
    shutil.rmtree(dest, ignore_errors=True)
