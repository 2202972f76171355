"""Maintain the message catalogs with Babel (a maintainer's and the tests' tool; the grader never imports it).

    python -m grader.core.i18n_catalog            # extract -> dli_grade.pot, merge into each .po, compile each .mo

Click's own error messages have a catalog of their own (click.po beside dli_grade.po, written by
hand from click's msgids, see grader/core/click_language.py); this compiles it too.

Extraction reads `_()`, `ngettext()` and `N_()` in grader/ and tasks/ (never grader/sandbox/executor/, which runs in
the child and holds no human text of ours; grader/dli_grade/ reads the same catalog, see its language.py).
Translate the new entries of the .po (msgstr), then run it again.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

from grader.core.click_language import DOMAIN as CLICK_DOMAIN
from grader.core.i18n import DOMAIN, LANGUAGES, LOCALE_DIR

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("grader", "tasks")
SKIPPED = ("grader/sandbox/executor/", "grader/core/i18n_catalog.py")  # dli_grade/ reads this catalog too
KEYWORDS = {**DEFAULT_KEYWORDS, "N_": None}
POT = LOCALE_DIR / f"{DOMAIN}.pot"


def po_path(lang: str, domain: str = DOMAIN) -> Path:
    return LOCALE_DIR / lang.replace("-", "_") / "LC_MESSAGES" / f"{domain}.po"


def extract() -> Catalog:
    """Every marked string of the grader's own code, with where it was found."""
    catalog = Catalog(project="dli-grade", domain=DOMAIN)
    for source in SOURCES:
        for filename, line, message, comments, context in extract_from_dir(
            ROOT / source, method_map=[("**.py", "python")], keywords=KEYWORDS
        ):
            path = f"{source}/{filename}"
            if path.startswith(SKIPPED):
                continue
            catalog.add(message, locations=[(path, line)], auto_comments=comments, context=context)
    return catalog


def read(lang: str, domain: str = DOMAIN) -> Catalog:
    with po_path(lang, domain).open("rb") as handle:
        return read_po(handle, locale=lang.replace("-", "_"), domain=domain)


def compiled(catalog: Catalog) -> bytes:
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    return buffer.getvalue()


def untranslated(catalog: Catalog, template: Catalog) -> list[str]:
    """The template's msgids the catalog lacks, leaves empty, or marks fuzzy."""
    missing = []
    for message in template:
        if not message.id:
            continue
        entry = catalog.get(message.id, context=message.context)
        strings = (
            entry.string
            if entry is not None and isinstance(entry.string, tuple)
            else (entry.string,)
            if entry is not None
            else ("",)
        )
        if entry is None or entry.fuzzy or not all(strings):
            missing.append(message.id if isinstance(message.id, str) else message.id[0])
    return missing


def main() -> int:
    template = extract()
    with POT.open("wb") as handle:
        write_po(handle, template, omit_header=False, sort_output=True, include_lineno=False)
    for lang in LANGUAGES[1:]:
        path = po_path(lang)
        if path.exists():
            catalog = read(lang)
            catalog.update(template, no_fuzzy_matching=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            catalog = Catalog(locale=lang.replace("-", "_"), domain=DOMAIN, project="dli-grade")
            catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        with path.open("wb") as handle:
            write_po(handle, catalog, sort_output=True, include_lineno=False, width=116)
        path.with_suffix(".mo").write_bytes(compiled(read(lang)))
        missing = untranslated(read(lang), template)
        print(f"{lang}: {len(template)} messages, {len(missing)} untranslated", file=sys.stderr)
        click_po = po_path(lang, CLICK_DOMAIN)
        if click_po.exists():  # click's own messages, translated by hand (grader/core/click_language.py)
            click_po.with_suffix(".mo").write_bytes(compiled(read(lang, CLICK_DOMAIN)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
