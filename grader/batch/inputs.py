"""Turn the batch's INPUT arguments into submissions, each with a unique student id.

An input is a notebook or module, a folder (searched recursively), a zip archive, or a git
repository (a local path with .git, or a URL). Problems found here (a refused archive
member, a repository that does not clone) become submissions with a `problem`, so they get
a row in the gradebook instead of vanishing.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import unicodedata
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from grader.batch import archive, gitsource, gradescope_export
from grader.core.errors import UnusableInput
from grader.core.i18n import _

SUFFIXES = (".ipynb", ".py")
SKIP_DIRS = {".ipynb_checkpoints", "__MACOSX", "__pycache__", ".git", "node_modules"}
MAX_ID_BYTES = 96  # UTF-8 bytes of an id: a folder name on every file system, with room for a suffix

# Where an id came from, as the gradebook's id_from column says it. Ids read from inside an
# archive are the students' own words: they rank after every other and never displace one.
FROM_FILE, FROM_FOLDER, FROM_METADATA, FROM_REPOSITORY = "file name", "folder name", "export metadata", "repository"
FROM_ARCHIVE, FROM_ARCHIVE_METADATA = "name inside archive", "metadata inside archive"
_INSIDE_ARCHIVE = {FROM_ARCHIVE, FROM_ARCHIVE_METADATA}


@dataclass
class Item:
    student: str  # proposed id; `assign_ids` makes it unique and file-system safe
    source: str  # what the instructor will recognise: the path, or archive!member, or repo@ref
    path: Path | None  # the file to grade; None when `problem` says why there is none
    problem: str | None = None
    id_from: str = FROM_FILE


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:10]


def _lms_name(name: str) -> str:
    """Student part of LMS export names: Canvas `alice_LATE_123_456_file` -> alice,
    Moodle `Alice Smith_123_assignsubmission_file_` -> Alice Smith."""
    moodle = re.match(r"^(.+?)_\d+_assignsubmission_\w*$", name)
    if moodle:
        return moodle.group(1)
    canvas = re.match(r"^([A-Za-z][A-Za-z0-9-]*?)(?:_LATE)?_\d+_\d+(?:_|$)", name)
    return canvas.group(1) if canvas else name


def _walk(folder: Path) -> list[Path]:
    """Submission files under `folder`, sorted, never following links; links are yielded as such."""
    found = []
    for current, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        for name in files:
            if name.lower().endswith(SUFFIXES) and not name.startswith("."):
                found.append(Path(current) / name)
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def _from_tree(
    root: Path, label: str, files: list[Path], known: dict[str, str] | None = None, in_archive: bool = False
) -> list[Item]:
    """Ids from a tree of files: the first folder below `root`, else the file's stem.

    `known` maps first folders to ids found elsewhere (a Gradescope export's metadata).
    """
    known = known or {}
    items = []
    for path in files:
        relative = path.relative_to(root)
        folder = relative.parts[0] if len(relative.parts) > 1 else None
        if folder is not None and known.get(folder):
            student, origin = known[folder], FROM_ARCHIVE_METADATA if in_archive else FROM_METADATA
        else:
            student = _lms_name(folder or path.stem)
            origin = FROM_ARCHIVE if in_archive else (FROM_FOLDER if folder else FROM_FILE)
        source = f"{label}/{relative.as_posix()}" if label else relative.as_posix()
        if path.is_symlink():
            problem = _("is a symbolic link; links inside inputs are not followed")
            items.append(Item(student, source, None, problem, origin))
        else:
            items.append(Item(student, source, path, id_from=origin))
    return items


def _archive_root(dest: Path, files: list[Path]) -> Path:
    """Descend through a single wrapping folder (`export/alice/...`, `export/bob/...`)."""
    root = dest
    while True:
        entries = [e for e in root.iterdir() if e.name not in SKIP_DIRS]
        if len(entries) != 1 or not entries[0].is_dir():
            return root
        inner = entries[0]
        if not any(len(f.relative_to(inner).parts) > 1 for f in files if inner in f.parents):
            return root  # `alice/submission.ipynb`: the folder is the student
        root = inner


def _from_zip(path: Path, workdir: Path, max_bytes: int) -> list[Item]:
    dest = (workdir / "extract" / f"{_digest(str(path.resolve()))}-{safe_id(path.stem)}").resolve()
    archive.remove(dest)
    try:
        extraction = archive.extract_submissions(path, dest, max_bytes)
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        # zipfile's and the system's words are English: only our own reasons are shown, else the error's name
        why = str(error) if isinstance(error, archive.ArchiveRefused) else type(error).__name__
        problem = _("{path}: not a readable zip archive: {error}").format(path=path, error=why)
        return [Item(path.stem, str(path), None, problem)]
    files = [target for _member, target in extraction.files]
    root = _archive_root(dest, files)
    known = gradescope_export.student_ids(_zip_member(path, root.relative_to(dest) / gradescope_export.METADATA_NAME))
    items = _from_tree(root, "", files, known, in_archive=True) if files else []
    for item in items:
        item.source = f"{path}!{item.source}"
    for member, reason in extraction.refused:
        parts = PurePosixPath(member.replace("\\", "/")).parts
        # a hostile path is named by its file; a well-formed one (refused for size) by its folder
        hostile = not parts or ".." in parts or parts[0] == "/"
        student = parts[0] if len(parts) > 1 and not hostile else PurePosixPath(member).stem or "member"
        problem = _("{path}: member {member} {reason}").format(path=path, member=repr(member), reason=reason)
        items.append(Item(_lms_name(student), f"{path}!{member}", None, problem, FROM_ARCHIVE))
    if not items:
        items.append(Item(path.stem, str(path), None, _("{path}: no .ipynb or .py file inside").format(path=path)))
    return items


def _zip_member(path: Path, member: Path) -> bytes:
    """A small member of the archive (b"" when absent, too large or unreadable); nothing is written."""
    try:
        with zipfile.ZipFile(path) as bundle:
            info = bundle.getinfo(member.as_posix())
            if info.file_size > gradescope_export.MAX_BYTES:
                return b""
            with bundle.open(info) as source:
                return source.read(gradescope_export.MAX_BYTES + 1)[: gradescope_export.MAX_BYTES]
    except (KeyError, zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError):
        return b""


def _export_ids(folder: Path) -> dict[str, str]:
    """Student ids from the metadata of an unpacked Gradescope export, if `folder` is one."""
    metadata = folder / gradescope_export.METADATA_NAME
    if metadata.is_symlink() or not metadata.is_file() or metadata.stat().st_size > gradescope_export.MAX_BYTES:
        return {}
    try:
        return gradescope_export.student_ids(metadata.read_bytes())
    except OSError:
        return {}


def _from_git(source: str, workdir: Path, ref: str | None, pattern: str) -> list[Item]:
    name = gitsource.repository_name(source) or "repository"
    label = f"{source}@{ref}" if ref else source
    dest = (workdir / "git" / f"{_digest(f'{source}@{ref}')}-{safe_id(name)}").resolve()
    archive.remove(dest)
    try:
        commit = gitsource.clone(source, dest, ref)
    except gitsource.GitError as error:
        problem = _("{source}: cannot clone: {error}").format(source=label, error=error)
        return [Item(name, label, None, problem, FROM_REPOSITORY)]
    matches = [
        f
        for f in _walk(dest)
        if fnmatch.fnmatch(f.relative_to(dest).as_posix(), pattern) or fnmatch.fnmatch(f.name, pattern)
    ]
    if not matches:
        problem = _("{source}: no file matching {pattern} in the repository").format(
            source=label, pattern=repr(pattern)
        )
        return [Item(name, label, None, problem, FROM_REPOSITORY)]
    return [
        Item(name, f"{label} ({commit[:12]}):{f.relative_to(dest).as_posix()}", f, id_from=FROM_REPOSITORY)
        for f in matches
    ]


def collect(
    inputs: Iterable[str | Path],
    workdir: Path,
    ref: str | None = None,
    notebook: str = "*.ipynb",
    max_extract_bytes: int = 1024 * 2**20,
) -> list[Item]:
    """Every submission the inputs hold, in input order; raise UnusableInput for a missing input."""
    items: list[Item] = []
    for raw in inputs:
        text = str(raw)
        path = Path(text)
        if gitsource.is_url(text) or gitsource.is_repository(path):
            items += _from_git(text, workdir, ref, notebook)
        elif path.is_dir():
            items += _from_tree(path, text.rstrip("/") or "/", _walk(path), _export_ids(path))
        elif path.is_file() and path.suffix.lower() == ".zip":
            items += _from_zip(path, workdir, max_extract_bytes)
        elif path.is_file():
            items.append(Item(path.stem, text, path))
        else:
            raise UnusableInput(_("{input}: no such file, folder, archive or git repository").format(input=text))
    return assign_ids(items)


def safe_id(text: str) -> str:
    """Letters and digits of any script, '.', '_' and '-' only; no leading dot or dash; bounded length.

    `\\w` keeps 张伟 and José readable; control, format (bidi) and symbol characters become '_'.
    """
    cleaned = re.sub(r"[^\w.-]+", "_", unicodedata.normalize("NFC", text))
    cleaned = re.sub(r"^[._-]+", "", cleaned)
    while len(cleaned.encode("utf-8")) > MAX_ID_BYTES:
        cleaned = cleaned[:-1]
    return cleaned.rstrip("_") or "submission"


def assign_ids(items: list[Item]) -> list[Item]:
    """Make every student id unique (case- and Unicode-form-insensitively, for such file systems).

    Stable and fair: first every id from outside an archive, then every id from inside one, keeps
    its own name if still free (in input order); only then do the duplicates get suffixes, which
    skip any name already taken, so no one's id moves because of another's name (`alice-2` stays).
    """

    def key(name: str) -> str:
        return unicodedata.normalize("NFC", name).casefold()

    ordered = sorted(items, key=lambda item: item.id_from in _INSIDE_ARCHIVE)  # stable: input order within each
    used: set[str] = set()
    duplicates = []
    for item in ordered:
        item.student = safe_id(item.student)
        if key(item.student) in used:
            duplicates.append(item)
        else:
            used.add(key(item.student))
    for item in duplicates:
        n = 2
        while key(f"{item.student}-{n}") in used:
            n += 1
        item.student = f"{item.student}-{n}"
        used.add(key(item.student))
    return items
