"""The language of human text: messages, hints and report labels, in English or simplified Chinese.

Strings are marked with `_()` (or `ngettext`) where they are written, as whole sentences with named
placeholders (`_("q returned shapes {x_t}").format(x_t=...)`), and translated through the standard
library's gettext from `grader/core/locale/<lang>/LC_MESSAGES/dli_grade.mo`. English is the source text
itself (no catalog), so English output is exactly the strings in the code.

The active language is a context variable, set once per grade (`use_language`) by the CLI, the batch
worker or the runner; verdicts never depend on it. The child (grader/sandbox/executor/) never imports this.
"""

from __future__ import annotations

import contextlib
import contextvars
import gettext
import os
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path

DOMAIN = "dli_grade"
LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = ("en", "zh-CN")
DEFAULT_LANGUAGE = "en"
LOCALE_VARIABLES = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")  # gettext's order of precedence

_language: contextvars.ContextVar[str] = contextvars.ContextVar("dli_grade_language", default=DEFAULT_LANGUAGE)


class UnknownLanguage(ValueError):
    """A --lang the grader has no catalog for."""


def normalize(lang: str) -> str:
    """'zh-CN', 'zh_CN', 'zh', 'zh_CN.UTF-8' -> 'zh-CN'; 'en', 'en_US' -> 'en'; anything else is an error."""
    text = lang.strip().split(".")[0].split("@")[0].replace("_", "-").lower()
    if text == "en" or text.startswith("en-") or text in ("c", "posix"):
        return "en"
    if text == "zh" or text in ("zh-cn", "zh-hans", "zh-sg", "zh-hans-cn"):
        return "zh-CN"
    raise UnknownLanguage(f"unknown language {lang[:40]!r}; choose from {', '.join(LANGUAGES)}")


def from_environment(environ: Mapping[str, str] | None = None) -> str:
    """The language the locale variables ask for: the first one set decides; one starting with 'zh'
    means zh-CN, anything else English (a locale is a hint, never an error)."""
    environ = os.environ if environ is None else environ
    for name in LOCALE_VARIABLES:
        value = environ.get(name, "").strip()
        if value:
            # LANGUAGE may list several (zh_CN:en); the first one decides
            return "zh-CN" if value.split(":")[0].lower().startswith("zh") else DEFAULT_LANGUAGE
    return DEFAULT_LANGUAGE


def resolve(asked: str | None, environ: Mapping[str, str] | None = None) -> str:
    """--lang when given (an unknown one is UnknownLanguage), else the locale, else English."""
    return normalize(asked) if asked else from_environment(environ)


@cache
def translations(lang: str, domain: str = DOMAIN) -> gettext.NullTranslations:
    """The catalog of `domain` (ours, or click's own messages: click_language.py) in `lang`."""
    if lang == DEFAULT_LANGUAGE:
        return gettext.NullTranslations()  # the source strings are the English text
    # a catalog missing from the install is a packaging bug: fail loudly rather than print English
    return gettext.translation(domain, localedir=str(LOCALE_DIR), languages=[lang.replace("-", "_")])


def current() -> str:
    return _language.get()


def set_language(lang: str) -> None:
    """Make `lang` (a name from LANGUAGES, or one `normalize` accepts) the language from now on."""
    _language.set(normalize(lang))


@contextlib.contextmanager
def use_language(lang: str | None) -> Iterator[str]:
    """Within the block, human text is in `lang` (None keeps the current one)."""
    if lang is None:
        yield current()
        return
    token = _language.set(normalize(lang))
    try:
        yield current()
    finally:
        _language.reset(token)


def _(message: str) -> str:
    """`message` in the active language."""
    return translations(current()).gettext(message)


def ngettext(singular: str, plural: str, count: int) -> str:
    return translations(current()).ngettext(singular, plural, count)


def N_(message: str) -> str:
    """Marks a string for extraction where it is defined (a table of messages); translate it with `_()`
    where it is used."""
    return message
