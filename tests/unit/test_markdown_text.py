"""ui.text.esc: remote text renders as exactly that text in Streamlit's Markdown (issue 10, item 7)."""

from __future__ import annotations

import re

import pytest

from ui.text import WORD_JOINER, esc

HOSTILE = (
    "![x](http://127.0.0.1:9/x.png) [link](http://127.0.0.1:9/) https://127.0.0.1:9/ <https://127.0.0.1:9/a> "
    "<b>b</b> :red[x] $x$ $$y$$ :material/home: :smile: www.example.org me@example.org &lt;i&gt; # h\n- item"
)


def active_markdown(markdown: str) -> list[str]:
    """What Streamlit would turn into something other than text: links, images, autolinks, HTML, directives,
    icons, shortcodes, LaTeX, entities, block syntax. Backslash-escaped characters are literal."""
    unescaped = re.sub(r"\\[!-/:-@\[-`{-~]", "", markdown)  # an escaped character is plain text
    found = [m for m in ("![", "](", "<", "$", "[", "&", "*", "_", "`", "~", "|") if m in unescaped]
    # Patterns matched after parsing, on the text with its escapes resolved:
    text = re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown)
    for pattern in (r"https?://", r"(?i)\bwww\.", r"[\w.+-]@[\w-]", r":[\w/+-]+:", r":(red|blue|green|gray|orange)\["):
        if re.search(pattern, text):
            found.append(pattern)
    if re.search(r"(?m)^\s*(#|-|\+|>|\d+\.)", unescaped):
        found.append("block syntax")
    return found


def test_the_hostile_text_is_active_markdown_as_it_is():
    assert len(active_markdown(HOSTILE)) > 10


def test_escaped_text_has_no_active_markdown():
    assert active_markdown(esc(HOSTILE)) == []


def test_escaped_text_reads_as_the_original():
    shown = re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", esc(HOSTILE)).replace(WORD_JOINER, "")
    assert shown == HOSTILE


@pytest.mark.parametrize("text", ["Acme CRM", "Connection refused: check the port", "José Müller", ""])
def test_ordinary_sentences_only_gain_escapes(text):
    assert esc(text).replace("\\", "").replace(WORD_JOINER, "") == text
    assert ": " in esc("Error: x")  # a colon before a space stays as it is (nothing to break)
