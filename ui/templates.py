"""Templates page widgets: pick a template, change each step's values, preview, run (progress polled in a
fragment, per-step results, the widget script), and the administrators' import/export/edit/delete."""

from __future__ import annotations

from typing import Any

import streamlit as st

from app_context import AppContext
from core.audit import Actor
from core.errors import ConsoleError, ValidationError
from core.sync.service import DIRECTIONS
from core.templates.schema import TemplateView, parse_json
from core.templates.service import RunView
from core.templates.steps import STEP_KINDS, Field, defaults_of
from ui import confirm
from ui.text import esc

PICK, RUN, PREVIEW = "tpl-pick", "tpl-run", "tpl-preview"
ICONS = {"done": ":material/check_circle:", "failed": ":material/error:", "pending": ":material/schedule:"}


def render(ctx: AppContext, actor: Actor) -> None:
    st.title("Templates")
    st.caption("Recipes of steps for quick demos: change the values, preview every step, then run them in one go.")
    templates = ctx.templates.list(actor)
    names = {t.key: f"{t.name} (v{t.version}{', built in' if t.builtin else ''})" for t in templates}
    key = st.selectbox("Template", list(names), format_func=lambda k: names[k], key=PICK)
    template = next(t for t in templates if t.key == key)
    if template.description:
        st.markdown(esc(template.description))
    values = _form(ctx, actor, template)
    buttons = st.container(horizontal=True)
    if buttons.button("Preview", key="tpl-do-preview", icon=":material/visibility:"):
        try:
            st.session_state[PREVIEW] = (key, ctx.templates.preview(actor, key, values))
        except ValidationError as exc:
            _field_errors(template, exc)
    if buttons.button("Run", type="primary", key="tpl-do-run", icon=":material/play_arrow:"):
        try:
            st.session_state[RUN] = ctx.templates.apply(actor, key, values)
        except ValidationError as exc:
            _field_errors(template, exc)
        except ConsoleError as exc:
            st.error(str(exc))
    shown = st.session_state.get(PREVIEW)
    if shown and shown[0] == key:
        st.subheader("These steps will run")
        for step in shown[1]:
            st.markdown(f"{step.position + 1}. **{esc(step.title)}**: {esc(step.description)}")
    if st.session_state.get(RUN):
        _run_fragment(ctx, actor, st.session_state[RUN])
    if actor.is_admin:
        _admin(ctx, actor, template)


def _form(ctx: AppContext, actor: Actor, template: TemplateView) -> list[dict[str, Any]]:
    values: list[dict[str, Any]] = []
    for position, step in enumerate(template.steps):
        kind = STEP_KINDS.get(step.kind)
        if kind is None:
            st.warning(f"Step {position + 1} has the kind {esc(step.kind)}, which this console no longer has.")
            values.append({})
            continue
        defaults = {**defaults_of(kind), **step.values}
        with st.expander(f"{position + 1}. {step.title or kind.label}", expanded=True):
            values.append(
                {
                    f.name: _input(ctx, actor, f, defaults[f.name], f"tpl-{template.key}-{position}-{f.name}")
                    for f in kind.fields
                }
            )
    return values


def _input(ctx: AppContext, actor: Actor, spec: Field, default: Any, key: str) -> Any:
    if spec.name == "integration_id":
        options = {v.id: v.name for v in ctx.helpdesk.integrations(actor)}
        if not options:
            st.info("You have no active Chatwoot integration: add one on the Integrations page first.")
            return 0
        return st.selectbox(spec.label, list(options), format_func=lambda i: options[i], key=key)
    if spec.name == "crm_integration_id":
        crms = {v.id: v.name for v in ctx.syncs.crm_choices(actor)}
        if not crms:
            st.info("You have no CRM integration whose contacts the console can sync (HubSpot): add one first.")
            return 0
        return st.selectbox(spec.label, list(crms), format_func=lambda i: crms[i], key=key)
    if spec.kind == "secret":
        return st.text_input(spec.label, type="password", key=key, help="Not stored in the template or the run.")
    if spec.kind == "int":
        return int(st.number_input(spec.label, spec.minimum, spec.maximum, int(default), key=key))
    if spec.kind == "bool":
        return st.checkbox(spec.label, bool(default), key=key)
    if spec.kind == "choice":
        index = spec.options.index(default) if default in spec.options else 0
        return st.selectbox(spec.label, spec.options, index=index, key=key, format_func=option_label)
    if spec.kind == "choices":
        chosen = [d for d in default if d in spec.options]
        return st.multiselect(spec.label, spec.options, chosen, key=key, format_func=option_label)
    return st.text_input(spec.label, str(default or ""), max_chars=spec.max_length, key=key)


def option_label(option: str) -> str:
    """A choice as a person reads it: "expanded_bubble" -> "Expanded bubble", "crm_to_chatwoot" -> "CRM to
    Chatwoot"."""
    if option in DIRECTIONS:
        return DIRECTIONS[option]
    words = str(option).replace("_", " ")
    return words[:1].upper() + words[1:]


def _field_errors(template: TemplateView, exc: ValidationError) -> None:
    lines = []
    for path, message in exc.errors.items():
        where = path
        if path.startswith("steps[") and "]" in path:
            position = int(path[6 : path.index("]")])
            if position < len(template.steps):
                where = f"Step {position + 1} ({template.steps[position].title})"
        lines.append(f"- {esc(where)}: {esc(message)}")
    st.error("Some values need attention:\n" + "\n".join(lines))


def _run_fragment(ctx: AppContext, actor: Actor, run_id: int) -> None:
    first = ctx.templates.progress(actor, run_id)

    def show() -> None:
        try:
            run = ctx.templates.progress(actor, run_id)
        except ConsoleError as exc:
            st.error(str(exc))
            return
        _show_run(ctx, actor, run)
        if run.finished and not first.finished:
            st.rerun()  # the whole page, so the fragment stops polling (and fading) once the run is over

    st.fragment(show, run_every=None if first.finished else 1.0)()


def _show_run(ctx: AppContext, actor: Actor, run: RunView) -> None:
    st.subheader(f"Run #{run.id}: {run.template_name}")
    total = len(run.steps) or 1
    st.progress(run.done / total, text=f"{run.done} of {len(run.steps)} steps done ({run.status})")
    for step in run.steps:
        line = step.result.get("summary") or step.message or ("Waiting." if step.status == "pending" else "")
        st.markdown(f"{ICONS.get(step.status, '')} **{esc(step.title)}**: {esc(line)}")
    if run.status == "failed":
        st.error(f"The run stopped: {esc(run.message)}" if run.message else "The run stopped.")
        if st.button("Resume from the failed step", key=f"tpl-resume-{run.id}"):
            try:
                ctx.templates.resume(actor, run.id)
            except ConsoleError as exc:
                st.error(str(exc))
            st.rerun()
    if run.status == "done":
        st.success("Every step is done.")
    if run.script:
        st.subheader("Widget script")
        st.caption(
            esc(
                "Paste it just before </body> on every page of the website (the copy button is at its top right); "
                "the Chat widget page previews it and keeps the preset."
            )
        )
        st.code(run.script, language="html")


def _admin(ctx: AppContext, actor: Actor, template: TemplateView) -> None:
    st.divider()
    st.subheader("Manage templates")
    st.download_button(
        "Export as JSON",
        ctx.templates.export(actor, template.key),
        file_name=f"{template.name}.json",
        mime="application/json",
        key="tpl-export",
    )
    upload = st.file_uploader("Import a template (JSON)", type=["json"], key="tpl-import")
    if upload is not None and st.button("Import", key="tpl-do-import"):
        try:
            stored = ctx.templates.import_json(actor, upload.getvalue().decode("utf-8", errors="replace"))
            st.success(f"Imported {esc(stored.name)} (version {stored.version}).")
        except ValidationError as exc:
            st.error(
                "The template was not imported:\n" + "\n".join(f"- {esc(k)}: {esc(v)}" for k, v in exc.errors.items())
            )
        except ConsoleError as exc:
            st.error(str(exc))
    if template.builtin:
        st.caption("Built-in templates are read-only: export one, change it, and import it under another name.")
        return
    text = st.text_area(
        "Edit as JSON", ctx.templates.export(actor, template.key), height=300, key=f"tpl-edit-{template.key}"
    )
    save, remove = st.columns(2)
    if save.button("Save changes", key="tpl-save"):
        try:
            stored = ctx.templates.save(actor, parse_json(text), template.key)
            st.success(f"Saved {esc(stored.name)} as version {stored.version}.")
        except ValidationError as exc:
            st.error("Not saved:\n" + "\n".join(f"- {esc(k)}: {esc(v)}" for k, v in exc.errors.items()))
        except ConsoleError as exc:
            st.error(str(exc))
    if confirm.destructive(
        "Delete this template",
        "tpl-delete",
        f"Delete the template {template.name}? This cannot be undone.",
        where=remove,
    ):
        try:
            ctx.templates.delete(actor, template.key)
            st.session_state.pop(PICK, None)
            st.rerun()
        except ConsoleError as exc:
            st.error(str(exc))
