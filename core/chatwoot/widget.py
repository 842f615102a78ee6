"""The Chatwoot chat widget script, built by a pure function that is safe by construction.

The script follows Chatwoot's own loader (what an inbox's ``web_widget_script`` holds), preceded by the
SDK settings::

    <script>
      window.chatwootSettings = {"position": "right", "type": "standard", ...};
      (function(d,t) {
        var BASE_URL="https://chat.example.com";
        var g=d.createElement(t),s=d.getElementsByTagName(t)[0];
        g.src=BASE_URL+"/packs/js/sdk.js";
        g.defer = true;
        g.async = true;
        s.parentNode.insertBefore(g,s);
        g.onload=function(){
          window.chatwootSDK.run({
            websiteToken: "abc123",
            baseUrl: BASE_URL
          })
        }
      })(document,"script");
    </script>

Why no input can end the script element or inject code: every value that reaches the script (each
setting, the base URL, the website token) is written by ``to_script_json``: a JSON string or literal with
``<``, ``>``, ``&``, U+2028 and U+2029 written as ``\\uXXXX`` escapes. JSON strings cannot end early
(quotes and backslashes are escaped), ``</script`` and ``<!--`` cannot appear (no raw ``<``), and the two
line separators JavaScript once treated as line ends cannot appear either. On top of that the base URL
must be a well-formed http(s) address without credentials, quotes or whitespace, and the website token
must be URL-safe characters only.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, fields
from typing import Any
from urllib.parse import urlsplit

from core.errors import ValidationError

POSITIONS = ("left", "right")
TYPES = ("standard", "expanded_bubble")
DARK_MODES = ("light", "auto")
MAX_LAUNCHER_TITLE = 100
MAX_BASE_URL = 2048
_LOCALE = re.compile(r"[a-z]{2,3}(?:[_-][A-Za-z0-9]{2,4})?")
_WEBSITE_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,128}")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_PATH = re.compile(r"(?:/[A-Za-z0-9._~!$()*+,;=:@%-]*)*")
_UNSAFE_IN_URL = re.compile(r"[\s\"'`<>\\{}|^\x00-\x1f\x7f]")
# Characters written as \uXXXX escapes: the five that matter inside <script>, and lone surrogates (which
# have no UTF-8 form, so a page could not be saved with them raw).
_SCRIPT_UNSAFE = re.compile("[<>&\u2028\u2029\ud800-\udfff]")

# SDK setting name -> WidgetSettings attribute.
SDK_NAMES = {
    "position": "position",
    "type": "type",
    "launcherTitle": "launcher_title",
    "locale": "locale",
    "darkMode": "dark_mode",
    "hideMessageBubble": "hide_message_bubble",
    "showPopoutButton": "show_popout_button",
    "useBrowserLanguage": "use_browser_language",
}


def to_script_json(value: Any) -> str:
    """JSON for inside a <script> element: <, >, &, U+2028 and U+2029 as \\uXXXX escapes.

    Those characters only ever occur inside JSON strings, where the escapes mean the same characters,
    so ``json.loads`` of the result gives back ``value``.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "), allow_nan=False)
    return _SCRIPT_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


@dataclass(frozen=True)
class WidgetSettings:
    """Settings of Chatwoot's web SDK (window.chatwootSettings), with the SDK's defaults.

    position: "left" | "right"; type: "standard" | "expanded_bubble" (the bubble with the launcher title);
    launcher_title: text of the expanded bubble (empty: Chatwoot's default); locale: e.g. "en", "pt_BR";
    dark_mode: "light" | "auto"; hide_message_bubble: no bubble (open it from your own button);
    show_popout_button: a button to open the chat in a new window; use_browser_language: follow the
    visitor's browser language instead of ``locale``.
    """

    position: str = "right"
    type: str = "standard"
    launcher_title: str = ""
    locale: str = "en"
    dark_mode: str = "light"
    hide_message_bubble: bool = False
    show_popout_button: bool = False
    use_browser_language: bool = False

    def problems(self) -> dict[str, str]:
        """{attribute name: message} for every invalid setting; empty when all are valid."""
        errors: dict[str, str] = {}
        if self.position not in POSITIONS:
            errors["position"] = "Choose the position left or right."
        if self.type not in TYPES:
            errors["type"] = "Choose the type standard or expanded_bubble."
        if self.dark_mode not in DARK_MODES:
            errors["dark_mode"] = "Choose the dark mode light or auto."
        if not isinstance(self.launcher_title, str):
            errors["launcher_title"] = "The launcher title must be text."
        elif len(self.launcher_title) > MAX_LAUNCHER_TITLE:
            errors["launcher_title"] = f"Keep the launcher title under {MAX_LAUNCHER_TITLE} characters."
        if not isinstance(self.locale, str) or not _LOCALE.fullmatch(self.locale):
            errors["locale"] = "Enter a language code such as en, fr or pt_BR."
        for name in ("hide_message_bubble", "show_popout_button", "use_browser_language"):
            if not isinstance(getattr(self, name), bool):
                errors[name] = "Choose on or off."
        return errors

    def validate(self) -> WidgetSettings:
        """Raise ValidationError (keys are attribute names) unless every setting is valid; return self."""
        errors = self.problems()
        if errors:
            raise ValidationError(errors)
        return self

    def as_sdk(self) -> dict[str, Any]:
        """The settings under the SDK's names, in a fixed order: what window.chatwootSettings receives."""
        return {sdk: getattr(self, attribute) for sdk, attribute in SDK_NAMES.items()}

    @classmethod
    def from_sdk(cls, data: dict[str, Any] | None) -> WidgetSettings:
        """From SDK names (as stored in a preset); unknown keys are ignored, missing ones take defaults.

        The result is not validated: call ``problems()`` or ``validate()``.
        """
        data = data or {}
        values = {attribute: data[sdk] for sdk, attribute in SDK_NAMES.items() if sdk in data}
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


ATTRIBUTES = tuple(f.name for f in fields(WidgetSettings))


def base_url_problem(url: Any) -> str | None:
    """Why ``url`` cannot be the widget's BASE_URL, or None when it can.

    It must be an absolute http(s) address with a host name or IP address, optionally a port and a path,
    and nothing else: no user name or password, no query or fragment, no whitespace, quotes, backslashes,
    angle brackets or control characters.
    """
    if not isinstance(url, str) or not url:
        return "Enter the Chatwoot address, for example https://chat.example.com."
    if len(url) > MAX_BASE_URL:
        return "The Chatwoot address is too long."
    if _UNSAFE_IN_URL.search(url) or not url.isascii():
        return "The Chatwoot address may not contain spaces, quotes, backslashes, angle brackets or non-ASCII text."
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "The Chatwoot address is not a well-formed web address."
    if parts.scheme not in ("http", "https"):
        return "The Chatwoot address must start with http:// or https://."
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        return "Leave user names and passwords out of the Chatwoot address."
    if parts.query or parts.fragment or "?" in url or "#" in url:
        return "The Chatwoot address may not have a query (?...) or a fragment (#...)."
    host = parts.hostname or ""
    bracketed = parts.netloc.startswith("[")
    if not host or not (_HOST.fullmatch(host) or (bracketed and re.fullmatch(r"[0-9a-fA-F:.]+", host))):
        return "The Chatwoot address needs a valid host name."
    if port is not None and not 0 < port < 65536:
        return "The port of the Chatwoot address is not valid."
    if not _PATH.fullmatch(parts.path):
        return "The path of the Chatwoot address is not valid."
    return None


def normalise_base_url(url: str) -> str:
    """The validated base URL without a trailing "/" (raises ValidationError on "base_url")."""
    problem = base_url_problem(url)
    if problem:
        raise ValidationError({"base_url": problem})
    return url.rstrip("/")


def website_token_problem(token: Any) -> str | None:
    """Why ``token`` cannot be a website token (letters, digits, "-" and "_" only), or None."""
    if not isinstance(token, str) or not _WEBSITE_TOKEN.fullmatch(token):
        return "The inbox's website token is missing or has characters a Chatwoot website token never has."
    return None


def widget_base_url(integration_base_url: str, public_base_url: str | None = None) -> str:
    """BASE_URL: the configured public widget host (CHATWOOT_WIDGET_BASE_URL) if any, else the integration's
    Chatwoot URL. Validated either way (raises ValidationError on "base_url")."""
    return normalise_base_url(public_base_url or integration_base_url)


def build_script(base_url: str, website_token: str, settings: WidgetSettings | None = None) -> str:
    """The <script> element to paste into a web page (see the module docstring for its exact shape).

    Raises ValidationError (keys: "base_url", "website_token" and WidgetSettings attribute names) when an
    input is invalid; a returned script is always safe to embed in HTML.
    """
    settings = settings or WidgetSettings()
    errors = dict(settings.problems())
    base_problem = base_url_problem(base_url)
    if base_problem:
        errors["base_url"] = base_problem
    token_problem = website_token_problem(website_token)
    if token_problem:
        errors["website_token"] = token_problem
    if errors:
        raise ValidationError(errors)
    base = to_script_json(base_url.rstrip("/"))
    token = to_script_json(website_token)
    return (
        "<script>\n"
        f"  window.chatwootSettings = {to_script_json(settings.as_sdk())};\n"
        "  (function(d,t) {\n"
        f"    var BASE_URL={base};\n"
        "    var g=d.createElement(t),s=d.getElementsByTagName(t)[0];\n"
        '    g.src=BASE_URL+"/packs/js/sdk.js";\n'
        "    g.defer = true;\n"
        "    g.async = true;\n"
        "    s.parentNode.insertBefore(g,s);\n"
        "    g.onload=function(){\n"
        "      window.chatwootSDK.run({\n"
        f"        websiteToken: {token},\n"
        "        baseUrl: BASE_URL\n"
        "      })\n"
        "    }\n"
        '  })(document,"script");\n'
        "</script>\n"
    )


__all__ = [
    "ATTRIBUTES",
    "DARK_MODES",
    "POSITIONS",
    "TYPES",
    "WidgetSettings",
    "base_url_problem",
    "build_script",
    "normalise_base_url",
    "to_script_json",
    "website_token_problem",
    "widget_base_url",
]
