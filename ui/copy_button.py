"""A visible Copy button that says "Copied" once the text is on the clipboard (st.code's own copy icon
shows only on hover, and not at all on a phone).

The button's markup is fixed; the text to copy arrives as component data and only ever reaches the
clipboard (never innerHTML), so a script or a name in it cannot run or render here.
"""

from __future__ import annotations

from streamlit.components.v2 import component

_JS = """
export default function (component) {
  const { data, parentElement } = component;
  const button = parentElement.querySelector("button");
  const label = parentElement.querySelector(".label");
  const idle = (data && data.label) || "Copy";
  label.textContent = idle;
  let timer = null;
  function say(text) {
    label.textContent = text;
    clearTimeout(timer);
    timer = setTimeout(() => { label.textContent = idle; }, 2500);
  }
  function fallback(text) {
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    parentElement.appendChild(area);
    area.select();
    let done = false;
    try { done = document.execCommand("copy"); } catch (e) { done = false; }
    area.remove();
    return done;
  }
  button.onclick = () => {
    const text = String((data && data.text) || "");
    const failed = "Copy failed: select the text and press Ctrl+C";
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(() => say("Copied"), () => say(fallback(text) ? "Copied" : failed));
    } else {
      say(fallback(text) ? "Copied" : failed);
    }
  };
}
"""

_CSS = """
button {
  display: inline-flex; align-items: center; gap: 0.4rem; padding: 0.4rem 0.9rem; min-height: 2.5rem;
  border-radius: 0.5rem; border: 1px solid var(--st-primary-color); background: var(--st-primary-color);
  color: #fff; font: inherit; font-weight: 600; cursor: pointer;
}
button:focus-visible { outline: 2px solid var(--st-text-color); outline-offset: 2px; }
"""

_HTML = '<button type="button" aria-live="polite"><span class="label">Copy</span></button>'

_mount = component("console_copy_button", html=_HTML, css=_CSS, js=_JS)


def copy_button(text: str, label: str, key: str) -> None:
    """A button labelled ``label`` that copies ``text`` and then says "Copied" for a few seconds."""
    _mount(data={"text": text, "label": label}, key=key)
