"""The language of the client's own words (its errors, the note under a report), chosen as the CLI chooses.

The client imports nothing of the grader into the student's kernel, so it repeats the choice of
grader/core/i18n.py (`lang=` when given, else the locale variables LANGUAGE, LC_ALL, LC_MESSAGES, LANG:
the first one set decides, one starting with "zh" means zh-CN) and reads the grader's compiled catalog as
a data file with the standard library's gettext. tests/test_i18n.py checks that both choose alike.
"""

from __future__ import annotations

import contextlib
import contextvars
import gettext
import os
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path

DOMAIN = "dli_grade"  # the grader's catalog: one set of translations for both
ENGLISH, CHINESE = "en", "zh-CN"
LOCALE_VARIABLES = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")
HERE = Path(__file__).resolve().parent
# grader/core/locale/ from a checkout or an editable install (this folder is grader/dli_grade/), and from
# an installed wheel (this folder is site-packages/dli_grade/, beside site-packages/grader/)
CATALOG_FOLDERS = (HERE.parent / "core" / "locale", HERE.parent / "grader" / "core" / "locale")

_language: contextvars.ContextVar[str] = contextvars.ContextVar("dli_grade_client_language", default=ENGLISH)


def _chinese(value: str) -> bool:
    return value.strip().split(":")[0].lower().startswith("zh")


def resolve(lang: str | None, environ: Mapping[str, str] | None = None) -> str:
    """`lang` when given, else the first locale variable set; zh... is zh-CN, anything else English. An unknown
    `lang` is the CLI's to refuse (it names the choices); the client's own words are then in English."""
    if lang:
        return CHINESE if _chinese(lang) else ENGLISH
    environ = os.environ if environ is None else environ
    for name in LOCALE_VARIABLES:
        value = environ.get(name, "").strip()
        if value:
            return CHINESE if _chinese(value) else ENGLISH
    return ENGLISH


@cache
def _translations(lang: str) -> gettext.NullTranslations:
    if lang == ENGLISH:
        return gettext.NullTranslations()  # the source strings are the English text
    for folder in CATALOG_FOLDERS:
        if folder.is_dir():
            # an error must still be raised when no catalog is found: English then, never a second error
            return gettext.translation(DOMAIN, localedir=str(folder), languages=[lang.replace("-", "_")], fallback=True)
    return gettext.NullTranslations()


@contextlib.contextmanager
def use_language(lang: str | None) -> Iterator[str]:
    """Within the block, the client speaks `resolve(lang)`."""
    token = _language.set(resolve(lang))
    try:
        yield _language.get()
    finally:
        _language.reset(token)


def current() -> str:
    return _language.get()


def _(message: str) -> str:
    """`message` in the active language."""
    return _translations(_language.get()).gettext(message)


def ngettext(singular: str, plural: str, count: int) -> str:
    return _translations(_language.get()).ngettext(singular, plural, count)


def N_(message: str) -> str:
    """Marks a string for extraction where it is defined; translate it with `_()` (or `in_language`) where used."""
    return message


def in_language(message: str, lang: str) -> str:
    """`message` in `lang` (a result shown after its check, in the language it was checked in)."""
    return _translations(lang).gettext(message)
