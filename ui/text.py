"""Remote and user-supplied text, shown as plain text in elements that render Markdown.

Streamlit renders Markdown in st.markdown, st.caption, st.write of strings, st.error/warning/info/success,
st.toast, st.spinner, st.progress text, st.metric labels and the labels of expanders, tabs, buttons,
checkboxes and radio options. A customer's service, a customer or a colleague controls much of what the
console shows there (error bodies, integration names, Chatwoot agent and inbox names, user names), and
Markdown in it would load remote images and show live links in a staff browser. Every such string goes
through ``esc``; dataframes, st.code, st.json, st.text and the options of selectboxes show text as it is
and need nothing.

Two steps, because Streamlit's Markdown has two kinds of syntax:

- Syntax the parser sees (links, images, ``<https://…>``, HTML, emphasis, headings, lists, tables, LaTeX
  ``$…$``, ``:red[…]`` directives): every ASCII punctuation character is backslash-escaped, which CommonMark
  allows for all of them, so none of it is ever parsed.
- Syntax found afterwards in the parsed text, where a backslash escape no longer exists: GFM's autolinks
  of bare ``https://…``, ``www.…`` and ``name@host`` and Streamlit's ``:material/…:`` icons and ``:smile:``
  emoji shortcodes. An invisible WORD JOINER (U+2060) after ``:`` (when a letter or a sign follows), after
  ``@`` (when something follows) and after ``www`` breaks those patterns while the text reads the same.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from core.words import readable

WORD_JOINER = "\u2060"
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation character
# Icons, shortcodes and colour directives start with a letter (or +/-, escaped) after the colon, so a time
# ("09:30") or a ratio keeps its colons clean; an address after "@" is broken whatever follows.
_AFTER_COLON_OR_AT = re.compile(r"(?<=\\:)(?=[A-Za-z_\\])|(?<=\\@)(?=\S)")
_WWW = re.compile(r"(?i)(?<![0-9a-z])www(?=\\\.)")


def esc(text: object) -> str:
    """``text`` as Markdown that renders exactly as that text: no link, image, HTML, icon, colour or LaTeX."""
    escaped = _PUNCTUATION.sub(r"\\\1", str(text))
    escaped = _AFTER_COLON_OR_AT.sub(WORD_JOINER, escaped)
    return _WWW.sub(lambda m: m.group(0) + WORD_JOINER, escaped)


def details_markdown(details: Mapping, skip: tuple[str, ...] = ("field_errors",)) -> str:
    """What a test or a record found, as a Markdown list of "**Label:** value" lines (nested values flattened
    with readable labels by core.words.readable), every label and value escaped: never a JSON tree."""
    shown = {k: v for k, v in details.items() if k not in skip}
    return "\n".join(f"- **{esc(label)}:** {esc(value)}" for label, value in readable(shown))
