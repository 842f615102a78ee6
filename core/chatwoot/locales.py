"""The languages Chatwoot's widget speaks, by the locale code its SDK takes (chatwootSettings.locale).

From Chatwoot's config/initializers/languages.rb (LANGUAGES_CONFIG, the enabled entries: the locales its
widget and dashboard are translated into), each named in its own language as Chatwoot names it. The widget
page offers these; a preset saved with another well-formed code (an older list, a newer Chatwoot) still
loads and is offered as it is (core.chatwoot.widget validates the form of a code, not this list).
"""

from __future__ import annotations

LOCALES: dict[str, str] = {
    "en": "English",
    "ar": "العربية (Arabic)",
    "ca": "Català (Catalan)",
    "cs": "Čeština (Czech)",
    "da": "Dansk (Danish)",
    "de": "Deutsch (German)",
    "el": "Ελληνικά (Greek)",
    "es": "Español (Spanish)",
    "fa": "فارسی (Persian)",
    "fi": "Suomi (Finnish)",
    "fr": "Français (French)",
    "id": "Bahasa Indonesia (Indonesian)",
    "it": "Italiano (Italian)",
    "ja": "日本語 (Japanese)",
    "ko": "한국어 (Korean)",
    "ml": "മലയാളം (Malayalam)",
    "nl": "Nederlands (Dutch)",
    "pt": "Português (Portuguese)",
    "pt_BR": "Português Brasileiro (Brazilian Portuguese)",
    "ro": "Română (Romanian)",
    "ru": "Русский (Russian)",
    "sv": "Svenska (Swedish)",
    "ta": "தமிழ் (Tamil)",
    "tr": "Türkçe (Turkish)",
    "vi": "Tiếng Việt (Vietnamese)",
    "zh_TW": "中文 (台湾) (Traditional Chinese)",
}


def choices(current: str | None = None) -> list[str]:
    """The codes to offer: Chatwoot's, and ``current`` first after them when it is another one (a stored
    value outside the list is kept, never silently replaced)."""
    codes = list(LOCALES)
    if current and current not in LOCALES:
        codes.append(current)
    return codes


def locale_label(code: str) -> str:
    """ "Deutsch (German) · de"; a code outside the list as "xx (not in Chatwoot's list)"."""
    name = LOCALES.get(code)
    return f"{name} · {code}" if name else f"{code} (not in Chatwoot's list)"
