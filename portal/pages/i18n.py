"""The languages of the pages: which one a request is answered in, its direction, and how
dates, numbers and sizes read in it (Flask-Babel, bound once by :mod:`portal.web`).

The locale is the signed-in user's choice (``User.locale``, set on the account page), else the
best of the browser's ``Accept-Language``, else English. Outside a request (the command line,
workers) everything stays English: ``flask_babel.gettext`` answers the message id itself.

The catalogs are ``translations/<locale>/LC_MESSAGES/messages.po`` (``make messages`` extracts,
``make translations`` compiles the ``.mo`` files, which are built at install, not committed).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import Any

from babel import Locale, dates, numbers, support
from flask import Flask, g, has_app_context, has_request_context, request
from flask_babel import Babel, get_locale, get_translations, ngettext, refresh
from flask_login import current_user
from markupsafe import Markup, escape

from portal.config import REPO_ROOT
from portal.db import stored_utc

__all__ = [
    "DEFAULT_LOCALE",
    "LOCALES",
    "LOCALE_NAMES",
    "N_",
    "TRANSLATIONS_DIR",
    "Phrase",
    "Translated",
    "direction",
    "format_size",
    "format_when",
    "init_i18n",
    "locale_code",
    "readers_language",
    "refresh_language",
    "refusal",
    "request_translations",
    "say",
    "select_locale",
    "translate",
    "translations_for",
    "user_locale",
]

DEFAULT_LOCALE = "en"
#: Every locale the portal has a catalog for, in the order the account page offers them.
LOCALES: tuple[str, ...] = ("en", "ar", "my")
#: Each language in its own script (a reader finds their language whatever the page's is).
LOCALE_NAMES: dict[str, str] = {
    "en": "English",
    "ar": "\u0627\u0644\u0639\u0631\u0628\u064a\u0629",
    "my": "\u1019\u103c\u1014\u103a\u1019\u102c",
}
_RIGHT_TO_LEFT = frozenset({"ar"})
TRANSLATIONS_DIR = REPO_ROOT / "translations"

#: English keeps the portal's ISO-like timestamps (officers and logs compare them by eye);
#: other languages get their own CLDR medium format, digits and month names.
_ENGLISH_PATTERN = "yyyy-MM-dd HH:mm"


#: Where this request's catalog and language are kept (``flask.g``), see
#: :func:`request_translations` and :func:`locale_code`.
_CATALOG = "portal_catalog"
_LOCALE = "portal_locale"


def request_translations() -> support.NullTranslations:
    """This request's catalog, looked up once per request and kept on ``flask.g``.

    Flask-Babel's ``get_translations`` finds the locale and names its cache key again on
    every call; a list page translates hundreds of strings (its row labels), and those
    look-ups were a third of its time. :func:`refresh_language` forgets the kept catalog.
    """
    if not has_app_context():
        return support.NullTranslations()
    found: support.NullTranslations | None = g.get(_CATALOG)
    if found is None:
        found = get_translations()
        setattr(g, _CATALOG, found)
    return found


def gettext(message: str, **params: object) -> str:
    """``message`` in this request's language, ``%(name)s`` filled from ``params`` (as
    ``flask_babel.gettext``, with the catalog of :func:`request_translations`)."""
    text = request_translations().ugettext(message)
    return text % params if params else text


def refresh_language() -> None:
    """The user changed language: this request's further messages and pages use it."""
    refresh()
    g.pop(_CATALOG, None)
    g.pop(_LOCALE, None)


class Phrase(str):
    """English text that remembers its catalog id and arguments: ``str()`` of it (logs, the
    API, the command line) is English; :func:`translate` says it in the reader's language.
    Domain refusals are made of these, so the domain needs no request to build them."""

    msgid: str
    params: dict[str, object]

    def __new__(cls, msgid: str, params: Mapping[str, object]) -> Phrase:
        made = super().__new__(cls, msgid % dict(params))
        made.msgid = msgid
        made.params = dict(params)
        return made


def N_(message: str, **params: object) -> str:
    """Mark ``message`` for the catalogs without translating it here (module-level labels,
    refusals made outside a request); with ``params`` (``%(name)s`` placeholders) a
    :class:`Phrase`. :func:`translate` and :class:`Translated` translate when shown."""
    return Phrase(message, params) if params else message


def translate(text: object) -> str:
    """``text`` in this request's language: a :class:`Phrase` with its arguments (themselves
    translated when they are phrases), a catalog id as its translation, anything else as it
    is (English outside a request)."""
    if isinstance(text, Phrase):
        params = {k: translate(v) if isinstance(v, Phrase) else v for k, v in text.params.items()}
        return str(gettext(text.msgid, **params))
    return str(gettext(str(text))) if text else ""


def refusal(exc: BaseException) -> str:
    """A typed refusal's message in this request's language (its first argument, a
    :class:`Phrase` or a catalog id; else its English text)."""
    first = exc.args[0] if exc.args else ""
    return translate(first) if isinstance(first, str) else str(exc)


@lru_cache(maxsize=len(LOCALES))
def translations_for(code: str) -> support.NullTranslations:
    """The compiled catalog of ``code`` for text made outside a request (e-mails, documents
    the workers write); English (the ids themselves) for ``en``, unknown codes or a catalog
    not yet compiled."""
    if code not in LOCALES or code == DEFAULT_LOCALE:
        return support.NullTranslations()
    return support.Translations.load(str(TRANSLATIONS_DIR), [code])


def say(code: str, message: str, **params: object) -> str:
    """``message`` in language ``code`` outside a request (``%(name)s`` filled from
    ``params``, themselves said in ``code`` when they are :class:`Phrase`)."""
    text = translations_for(code).gettext(message)
    filled = {k: say(code, v.msgid, **v.params) if isinstance(v, Phrase) else v
              for k, v in params.items()}  # fmt: skip
    return text % filled if params else text


def readers_language(users: Iterable[object]) -> str:
    """The one language every reader who chose one chose (e.g. an authority's recipients,
    for the letter in their package), else English: a document has one language."""
    chosen = {user_locale(user) for user in users if getattr(user, "locale", None)}
    return chosen.pop() if len(chosen) == 1 else DEFAULT_LOCALE


def user_locale(user: object) -> str:
    """The language a user chose (``User.locale``), else English: for what reaches them
    outside a request (e-mail)."""
    chosen = getattr(user, "locale", None)
    return chosen if chosen in LOCALES else DEFAULT_LOCALE


class Translated(Mapping[str, str]):
    """A label table whose values are translated into the request's language as they are
    read (``labels.get(status, status)`` in a template); English outside a request."""

    def __init__(self, labels: Mapping[str, str]) -> None:
        self._labels = labels

    def __getitem__(self, key: str) -> str:
        return str(gettext(self._labels[key]))

    def __iter__(self) -> Iterator[str]:
        return iter(self._labels)

    def __len__(self) -> int:
        return len(self._labels)


def select_locale() -> str:
    """The signed-in user's language, else the browser's best match, else English."""
    if not has_request_context():
        return DEFAULT_LOCALE
    if current_user and current_user.is_authenticated:
        chosen = getattr(current_user.user, "locale", None)
        if chosen in LOCALES:
            return str(chosen)
    best = request.accept_languages.best_match(LOCALES)
    return best or DEFAULT_LOCALE


def locale_code() -> str:
    """The language of this request (``en`` outside one), kept on ``flask.g`` with the catalog
    (every timestamp on a list asks; :func:`refresh_language` forgets it)."""
    if not has_app_context():
        return DEFAULT_LOCALE
    code: str | None = g.get(_LOCALE)
    if code is None:
        locale = get_locale()
        code = locale.language if isinstance(locale, Locale) else DEFAULT_LOCALE
        setattr(g, _LOCALE, code)
    return code


def direction(code: str | None = None) -> str:
    """``rtl`` or ``ltr`` for ``code`` (default: this request's language)."""
    return "rtl" if (code or locale_code()) in _RIGHT_TO_LEFT else "ltr"


def format_when(moment: datetime, *, date_only: bool = False) -> str:
    """A stored timestamp as people of this request's language read it, in UTC."""
    moment = stored_utc(moment)
    code = locale_code()
    if code == DEFAULT_LOCALE:  # _ENGLISH_PATTERN, without CLDR's pattern machinery
        day = f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        return day if date_only else f"{day} {moment.hour:02d}:{moment.minute:02d} UTC"
    if date_only:
        text = dates.format_date(moment.date(), "medium", locale=code)
    else:
        text = dates.format_datetime(moment, "medium", tzinfo=UTC, locale=code)
    return text if date_only else f"{text} UTC"


def format_size(num_bytes: int) -> str:
    """``1536`` -> ``"1.5 KB"`` (binary multiples, as upload dialogs show sizes), with this
    request's digits and unit names."""
    if num_bytes < 1024:
        return str(ngettext("%(num)s byte", "%(num)s bytes", num_bytes))
    value = float(num_bytes)
    units = (N_("KB"), N_("MB"), N_("GB"), N_("TB"))
    unit = units[0]
    for unit in units:
        value /= 1024
        if value < 1024 or unit == units[-1]:
            break
    locale = get_locale() or Locale.parse(DEFAULT_LOCALE)
    number = _size_pattern().apply(round(value, 1), locale)  # as numbers.format_decimal does
    return f"{number} {gettext(unit)}"


@cache
def _size_pattern() -> numbers.NumberPattern:
    """Sizes' number pattern, parsed once (``format_decimal`` parses it on every call)."""
    return numbers.parse_pattern("#,##0.#")


def bidi(text: object) -> Markup:
    """User content isolated from the page's direction (a Latin code in an Arabic sentence, an
    Arabic name in an English one): ``<bdi>`` lets the browser pick the text's own direction."""
    return Markup("<bdi>%s</bdi>") % escape(text)


def _template_context() -> dict[str, Any]:
    code = locale_code()
    return {
        "html_lang": code,
        "html_dir": direction(code),
        "locale_names": LOCALE_NAMES,
        "bidi": bidi,
        "format_when": format_when,
    }


def init_i18n(app: Flask) -> None:
    """Bind Flask-Babel with the portal's locale selector and catalogs, UTC throughout."""
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LOCALE)
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", "UTC")
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS_DIR))
    Babel(app, locale_selector=select_locale)
    # Templates translate through this request's catalog, fetched once (request_translations)
    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]  # the i18n extension's
        gettext=lambda s: request_translations().ugettext(s),
        ngettext=lambda s, p, n: request_translations().ungettext(s, p, n),
        newstyle=True,
        pgettext=lambda c, s: request_translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: request_translations().unpgettext(c, s, p, n),
    )
    # {% trans %} blocks collapse their line breaks and indentation, as babel.cfg extracts them
    app.jinja_env.policies["ext.i18n.trimmed"] = True
    app.context_processor(_template_context)
    app.jinja_env.filters["bidi"] = bidi
