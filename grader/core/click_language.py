"""Click's own words in the grade's language: its usage errors ("No such option", "Invalid value
for ...", "Try ... for help.") in simplified Chinese when the command runs in zh-CN.

Click marks those messages with the standard library's gettext, read through module-level `_`
and `ngettext` names in its modules, and would take the language from the locale variables; the
command's language is --lang, else the locale (`i18n.resolve`). So before click parses the
command line, the CLI finds the language asked for and points those names at the catalog of
click's messages shipped here (`locale/zh_CN/LC_MESSAGES/click.po`, written by hand: the error
messages a user meets, not the help's headings, which stay as the help's English text). A
message the catalog lacks, or a future click that names its functions otherwise, stays English.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from grader.core import i18n

DOMAIN = "click"
# The click modules whose messages a user of the command may meet.
MODULES = ("core", "exceptions", "parser", "types", "termui")


def language_asked(args: Sequence[str]) -> str | None:
    """The value of the last --lang on a command line (`--lang zh-CN` or `--lang=zh-CN`), if any."""
    found = None
    for index, arg in enumerate(args):
        if arg == "--":
            break
        if arg == "--lang" and index + 1 < len(args):
            found = args[index + 1]
        elif arg.startswith("--lang="):
            found = arg.split("=", 1)[1]
    return found


def use_for_command_line(args: Sequence[str]) -> None:
    """Set the language the command line asks for (an unknown --lang is left for click to refuse)
    and have click word its errors in it."""
    try:
        i18n.set_language(i18n.resolve(language_asked(args)))
    except i18n.UnknownLanguage:
        i18n.set_language(i18n.from_environment())
    for name in MODULES:
        module = importlib.import_module(f"click.{name}")
        if hasattr(module, "_"):
            module._ = click_gettext  # type: ignore[attr-defined]
        if hasattr(module, "ngettext"):
            module.ngettext = click_ngettext  # type: ignore[attr-defined]


def click_gettext(message: str) -> str:
    return i18n.translations(i18n.current(), DOMAIN).gettext(message)


def click_ngettext(singular: str, plural: str, count: int) -> str:
    return i18n.translations(i18n.current(), DOMAIN).ngettext(singular, plural, count)
