"""The chat widget script: Chatwoot's loader shape, settings validation, and safety against hostile input.

Safety is checked three ways: by looking for what must never appear (a second </script, a raw <), by
parsing the output with Python's HTML parser (exactly one <script> element whose JSON gives back every
input value, for any settings hypothesis can think of), and by running the script in Node's vm with a
stand-in document, where the only thing it may do is define the settings and add the SDK loader.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import settings as settings_module
from core.chatwoot.widget import (
    DARK_MODES,
    POSITIONS,
    TYPES,
    WidgetSettings,
    base_url_problem,
    build_script,
    to_script_json,
    website_token_problem,
    widget_base_url,
)
from core.errors import ValidationError
from core.settings import SettingsError, load_settings

BASE = "https://chat.example.com"
TOKEN = "Xy12_ab-CD34ef"
SETTINGS_PREFIX = "window.chatwootSettings = "

HOSTILE_TITLES = [
    "</script><script>alert(1)</script>",
    "</SCRIPT ><img src=x onerror=alert(1)>",
    '"; alert(1); var x="',
    "'; alert(1); var x='",
    '\\"; alert(1); //',
    "line one\nline two\r\nthree",
    "sep\u2028arators\u2029here",
    "<!-- <script>",
    "]]> --> <![CDATA[",
    "${alert(1)} `backtick`",
    "Chat with us 💬 — ¿Hablamos? 你好 مرحبا",
    "\x00\x01\x1f\x7f",
    "lone \ud800 surrogate",
    "&lt;script&gt; &amp;",
    "}; alert(1); ({",
]


class ScriptParser(HTMLParser):
    """Records every tag, comment and declaration, and the text inside <script>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.events: list[tuple[str, str]] = []
        self.script_text: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.events.append(("start", tag))
        self._in_script = tag == "script"

    def handle_startendtag(self, tag, attrs):
        self.events.append(("startend", tag))

    def handle_endtag(self, tag):
        self.events.append(("end", tag))
        self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.script_text.append(data)
        elif data.strip():
            self.events.append(("data", data))

    def handle_comment(self, data):
        self.events.append(("comment", data))

    def handle_decl(self, decl):
        self.events.append(("decl", decl))

    def handle_pi(self, data):
        self.events.append(("pi", data))

    def unknown_decl(self, data):
        self.events.append(("unknown", data))

    def handle_entityref(self, name):
        self.events.append(("entity", name))

    def handle_charref(self, name):
        self.events.append(("charref", name))


def parse(script: str) -> str:
    """Assert the HTML is exactly one <script> element; return its text."""
    parser = ScriptParser()
    parser.feed(script)
    parser.close()
    assert parser.events == [("start", "script"), ("end", "script")], parser.events
    return "".join(parser.script_text)


def decoded_parts(body: str) -> tuple[dict, str, str]:
    """(window.chatwootSettings, BASE_URL, websiteToken) read back out of the script text as JSON."""
    decoder = json.JSONDecoder()
    start = body.index(SETTINGS_PREFIX) + len(SETTINGS_PREFIX)
    sdk_settings, end = decoder.raw_decode(body, start)
    assert body[end] == ";"
    base_start = body.index("var BASE_URL=") + len("var BASE_URL=")
    base, _ = decoder.raw_decode(body, base_start)
    token_start = body.index("websiteToken: ") + len("websiteToken: ")
    token, _ = decoder.raw_decode(body, token_start)
    return sdk_settings, base, token


# ----- shape --------------------------------------------------------------------------------------------


def loader(base_json: str, token_json: str) -> str:
    """Chatwoot's loader as the script ends with it, after the settings line."""
    return (
        "  (function(d,t) {\n"
        f"    var BASE_URL={base_json};\n"
        "    var g=d.createElement(t),s=d.getElementsByTagName(t)[0];\n"
        '    g.src=BASE_URL+"/packs/js/sdk.js";\n'
        "    g.defer = true;\n"
        "    g.async = true;\n"
        "    s.parentNode.insertBefore(g,s);\n"
        "    g.onload=function(){\n"
        "      window.chatwootSDK.run({\n"
        f"        websiteToken: {token_json},\n"
        "        baseUrl: BASE_URL\n"
        "      })\n"
        "    }\n"
        '  })(document,"script");\n'
    )


def test_script_follows_chatwoots_loader():
    script = build_script(BASE + "/", TOKEN, WidgetSettings(position="left", launcher_title="Chat with us"))
    assert script.startswith("<script>\n  window.chatwootSettings = {")
    assert script.endswith(loader('"https://chat.example.com"', '"Xy12_ab-CD34ef"') + "</script>\n")
    sdk_settings, base, token = decoded_parts(parse(script))
    assert sdk_settings == {
        "position": "left",
        "type": "standard",
        "launcherTitle": "Chat with us",
        "locale": "en",
        "darkMode": "light",
        "hideMessageBubble": False,
        "showPopoutButton": False,
        "useBrowserLanguage": False,
    }
    assert (base, token) == (BASE, TOKEN)  # the trailing slash is dropped


def test_settings_use_the_sdks_names_and_round_trip():
    chosen = WidgetSettings("left", "expanded_bubble", "Hi", "pt_BR", "auto", True, True, True)
    sdk = chosen.as_sdk()
    assert list(sdk) == [
        "position",
        "type",
        "launcherTitle",
        "locale",
        "darkMode",
        "hideMessageBubble",
        "showPopoutButton",
        "useBrowserLanguage",
    ]
    assert WidgetSettings.from_sdk(sdk) == chosen
    assert WidgetSettings.from_sdk({"position": "left", "unknown": 1}) == WidgetSettings(position="left")
    assert WidgetSettings.from_sdk(None) == WidgetSettings()
    assert chosen.as_dict()["launcher_title"] == "Hi"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"position": "top"}, "position"),
        ({"type": "bubble"}, "type"),
        ({"dark_mode": "dark"}, "dark_mode"),
        ({"locale": "en<script>"}, "locale"),
        ({"locale": ""}, "locale"),
        ({"locale": "english"}, "locale"),
        ({"launcher_title": "x" * 101}, "launcher_title"),
        ({"launcher_title": 5}, "launcher_title"),
        ({"hide_message_bubble": "yes"}, "hide_message_bubble"),
        ({"show_popout_button": 1}, "show_popout_button"),
        ({"use_browser_language": None}, "use_browser_language"),
    ],
)
def test_invalid_settings_are_named(changes, field):
    bad = WidgetSettings(**changes)
    assert field in bad.problems()
    with pytest.raises(ValidationError) as caught:
        build_script(BASE, TOKEN, bad)
    assert field in caught.value.errors


@pytest.mark.parametrize("locale", ["en", "fr", "pt_BR", "zh_CN", "es-419", "fil"])
def test_locales_chatwoot_uses_are_accepted(locale):
    assert WidgetSettings(locale=locale).problems() == {}


# ----- hostile input ------------------------------------------------------------------------------------


@pytest.mark.parametrize("title", HOSTILE_TITLES)
def test_hostile_launcher_titles_cannot_end_the_script(title):
    script = build_script(BASE, TOKEN, WidgetSettings(type="expanded_bubble", launcher_title=title))
    body = script[len("<script>") : -len("</script>\n")]
    assert "<" not in body and ">" not in body.replace("=>", "")  # no raw angle bracket anywhere inside
    assert "&" not in body
    assert "\u2028" not in body and "\u2029" not in body
    assert script.lower().count("</script") == 1
    assert "<!--" not in script
    sdk_settings, _, _ = decoded_parts(parse(script))
    assert sdk_settings["launcherTitle"] == title
    assert script.encode("utf-8")  # savable as a page: no lone surrogate left raw


def test_to_script_json_escapes_exactly_the_dangerous_characters():
    assert to_script_json("<>&\u2028\u2029") == '"\\u003c\\u003e\\u0026\\u2028\\u2029"'
    assert to_script_json('é 💬 "q" \\') == '"é 💬 \\"q\\" \\\\"'  # readable unicode stays as it is
    assert to_script_json({"a": [1, True, None]}) == '{"a": [1, true, null]}'


@pytest.mark.parametrize(
    "url",
    [
        "",
        None,
        "chat.example.com",
        "ftp://chat.example.com",
        "javascript:alert(1)",
        "data:text/html,<script>",
        "//chat.example.com",
        "https://",
        "https://user:pass@chat.example.com",
        "https://user@chat.example.com",
        "https://chat.example.com/?q=1",
        "https://chat.example.com/#x",
        'https://chat.example.com/"onload="alert(1)',
        "https://chat.example.com/'",
        "https://chat.example.com/</script>",
        "https://chat.example.com/a b",
        "https://chat.example.com\n",
        " https://chat.example.com",
        "https://chat.example.com\\@evil.com",
        "https://chat.exämple.com",
        "https://chat.example.com:99999",
        "https://chat.example.com:abc",
        "https://-bad-.example.com",
        "https://chat..example.com",
        "https://chat.example.com/`x`",
        "https://chat.example.com/{x}",
        "https://" + "a" * 2100 + ".com",
    ],
)
def test_bad_base_urls_are_refused(url):
    assert base_url_problem(url)
    with pytest.raises(ValidationError) as caught:
        build_script(url, TOKEN)
    assert "base_url" in caught.value.errors


@pytest.mark.parametrize(
    "url",
    [
        "https://chat.example.com",
        "http://127.0.0.1:3000",
        "https://app.chatwoot.com/",
        "https://example.com/chatwoot",
        "http://[::1]:8080",
        "https://CHAT.Example.com:8443/support/",
    ],
)
def test_good_base_urls_are_accepted(url):
    assert base_url_problem(url) is None
    _, base, _ = decoded_parts(parse(build_script(url, TOKEN)))
    assert base == url.rstrip("/")


@pytest.mark.parametrize("token", ["", None, "abc def", 'abc"', "abc<", "a/b", "a.b", "x" * 129, "tök"])
def test_bad_website_tokens_are_refused(token):
    assert website_token_problem(token)
    with pytest.raises(ValidationError) as caught:
        build_script(BASE, token)
    assert "website_token" in caught.value.errors


def test_public_widget_host_wins_over_the_integrations_url():
    assert widget_base_url("http://chatwoot.internal:3000/", None) == "http://chatwoot.internal:3000"
    assert widget_base_url("http://chatwoot.internal:3000", "https://chat.example.com/") == BASE
    with pytest.raises(ValidationError):
        widget_base_url("http://chatwoot.internal:3000", "javascript:alert(1)")


# ----- the setting CHATWOOT_WIDGET_BASE_URL ------------------------------------------------------------


@pytest.fixture
def project(tmp_path, monkeypatch):
    root = tmp_path / "project"
    root.mkdir()
    monkeypatch.setattr(settings_module, "PROJECT_ROOT", root)  # no developer's secrets.toml is read
    return root


def widget_env(value: str | None) -> dict:
    env = {"INTEGRATION_ENCRYPTION_KEY": "7a" * 32, "COOKIE_KEY": "k" * 32}
    if value is not None:
        env["CHATWOOT_WIDGET_BASE_URL"] = value
    return env


def test_widget_base_url_setting(project, tmp_path):
    assert load_settings(widget_env(None), tmp_path / "s").chatwoot_widget_base_url is None
    loaded = load_settings(widget_env(" https://chat.example.com/ "), tmp_path / "s")
    assert loaded.chatwoot_widget_base_url == BASE
    for bad in ("chat.example.com", "https://u:p@chat.example.com", "https://chat.example.com/?x=1"):
        with pytest.raises(SettingsError, match="CHATWOOT_WIDGET_BASE_URL"):
            load_settings(widget_env(bad), tmp_path / "s")


# ----- property: any settings give one script element with the same values -----------------------------

label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
hosts = st.one_of(
    st.lists(label, min_size=1, max_size=4).map(".".join),
    st.sampled_from(["127.0.0.1", "[::1]", "app.chatwoot.com"]),
)
base_urls = st.builds(
    lambda scheme, host, port, path: f"{scheme}://{host}{port}{path}",
    st.sampled_from(["http", "https"]),
    hosts,
    st.one_of(st.just(""), st.integers(1, 65535).map(lambda p: f":{p}")),
    st.one_of(st.just(""), st.just("/"), st.from_regex(r"(/[A-Za-z0-9._~-]{1,8}){1,3}/?", fullmatch=True)),
)
tokens = st.from_regex(r"[A-Za-z0-9_-]{1,40}", fullmatch=True)
titles = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=100),  # every code point, surrogates included
    st.sampled_from(HOSTILE_TITLES),
    st.lists(
        st.sampled_from(["</", "script", ">", "<!--", "-->", '"', "'", "\\", "\n", "\u2028", "&"]), max_size=12
    ).map("".join),
)
widget_settings = st.builds(
    WidgetSettings,
    position=st.sampled_from(POSITIONS),
    type=st.sampled_from(TYPES),
    launcher_title=titles,
    locale=st.from_regex(r"[a-z]{2,3}([_-][A-Za-z0-9]{2,4})?", fullmatch=True),
    dark_mode=st.sampled_from(DARK_MODES),
    hide_message_bubble=st.booleans(),
    show_popout_button=st.booleans(),
    use_browser_language=st.booleans(),
)


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(base_url=base_urls, token=tokens, chosen=widget_settings)
def test_any_settings_make_exactly_one_script_element_with_the_same_values(base_url, token, chosen):
    script = build_script(base_url, token, chosen)
    body = parse(script)
    assert "<" not in body
    sdk_settings, base, sent_token = decoded_parts(body)
    assert sdk_settings == chosen.as_sdk()
    assert WidgetSettings.from_sdk(sdk_settings) == chosen
    assert base == base_url.rstrip("/")
    assert sent_token == token
    lines = body.split("\n")  # JavaScript's line ends; \x85 and the like are not among them
    assert lines[0] == "" and lines[1].startswith("  " + SETTINGS_PREFIX) and lines[1].endswith(";")
    assert "\n".join(lines[2:]) == loader(json.dumps(base), json.dumps(token))


# ----- the script runs nothing but the loader ------------------------------------------------------------

NODE_RUNNER = r"""
const vm = require('vm');
const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const results = input.map((body) => {
  const appended = [];
  let runArgs = null;
  const first = { parentNode: { insertBefore(g) { appended.push(g); } } };
  const document = {
    createElement(tag) { return { tag }; },
    getElementsByTagName() { return [first]; },
  };
  const window = {};
  const context = vm.createContext({ document, window });
  try {
    vm.runInContext(body, context, { timeout: 1000 });
    window.chatwootSDK = { run(args) { runArgs = args; } };
    appended.forEach((g) => g.onload && g.onload());
  } catch (error) {
    return { error: String(error) };
  }
  return {
    globals: Object.keys(context).sort(),
    windowKeys: Object.keys(window).sort(),
    settings: window.chatwootSettings,
    appended: appended.map((g) => ({ tag: g.tag, src: g.src, defer: g.defer, async: g.async })),
    run: runArgs,
  };
});
process.stdout.write(JSON.stringify(results));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_in_a_javascript_engine_the_script_only_loads_the_sdk():
    cases = [
        (f"http://127.0.0.1:{3000 + n}", f"tok_{n}", WidgetSettings(launcher_title=title, type="expanded_bubble"))
        for n, title in enumerate(HOSTILE_TITLES)
    ]
    bodies = [build_script(base, token, chosen)[len("<script>") : -len("</script>\n")] for base, token, chosen in cases]
    done = subprocess.run(
        ["node", "-e", NODE_RUNNER], input=json.dumps(bodies), capture_output=True, text=True, timeout=60, check=True
    )
    results = json.loads(done.stdout)
    assert len(results) == len(cases)
    for (base, token, chosen), result in zip(cases, results, strict=True):
        assert "error" not in result, result  # an injected alert(1) would be a ReferenceError here
        assert result["globals"] == ["document", "window"]  # BASE_URL stays inside the function
        assert result["windowKeys"] == ["chatwootSDK", "chatwootSettings"]
        assert result["settings"] == chosen.as_sdk()
        assert result["appended"] == [{"tag": "script", "src": base + "/packs/js/sdk.js", "defer": True, "async": True}]
        assert result["run"] == {"websiteToken": token, "baseUrl": base}
