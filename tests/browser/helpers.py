"""What the browser tests do alike: find the first administrator's password, sign in, wait for Streamlit."""

from __future__ import annotations

import re
import time

from tests.chromium import wait_for_cookie

COOKIE = "integrations_console_auth"


def settle(page) -> None:
    """Wait until the sign-in cookie is written and Streamlit has finished running the page.

    Writing the cookie reruns the page once; a click during that rerun could be lost.
    """
    wait_for_cookie(page, COOKIE)  # HttpOnly: the server set it; document.cookie never shows it
    idle(page)


def idle(page) -> None:
    """Wait until Streamlit has finished running the page (a rerun starts within 300 ms of an action)."""
    page.wait_for_timeout(300)
    page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')")


def first_admin_password(log_path, seconds: float = 20) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = re.search(r"user name admin, password (\S+)", log_path.read_text())
        if found:
            return found.group(1)
        time.sleep(0.2)
    raise AssertionError("the first start did not print the administrator's password")


# The first administrator's printed password is one-time: the password each test chose in its place.
CHOSEN: dict[str, str] = {}


def sign_in_as_admin(page, password: str, heading: str = "Overview", *, exact: bool = False) -> None:
    """Sign in as the first administrator on the sign-in form the page shows (the first time with the
    printed one-time password, choosing one in its place); wait for the page's heading."""
    page.get_by_label("User name").fill("admin")
    page.get_by_role("textbox", name="Password").fill(CHOSEN.get(password, password))
    page.get_by_role("button", name="Sign in").click()
    # The first page after sign-in imports and renders the most; a loaded machine can take a while.
    wanted = page.get_by_role("heading", name=heading, exact=exact)
    choose = page.get_by_role("heading", name="Choose a new password")
    wanted.or_(choose).first.wait_for(timeout=45_000)
    if password not in CHOSEN and choose.is_visible():
        CHOSEN[password] = own = f"{password}-own"
        page.get_by_role("textbox", name="New password", exact=True).fill(own)
        page.get_by_role("textbox", name="New password again").fill(own)
        page.get_by_role("button", name="Save my password").click()
        wanted.wait_for(timeout=45_000)
    settle(page)


def open_add_menu(page) -> None:
    """Open the Integrations page's "Add integration" menu (its type buttons live behind it)."""
    page.get_by_role("button", name="Add integration").click()
    page.get_by_role("button", name="Add CRM integration").wait_for()


ROW_HEIGHT, HEADER_HEIGHT = 35, 35  # st.dataframe's default row and header heights, in CSS pixels


def tick_row(page, index: int) -> None:
    """Click the selection box of the Integrations table's row `index` (0 first). The grid is drawn on a
    canvas, so by position; the list is in natural order, so a test knows each row's place."""
    grid = page.get_by_test_id("stDataFrame").first
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    assert box is not None, "the table is not on the page"
    page.mouse.click(box["x"] + 18, box["y"] + HEADER_HEIGHT + ROW_HEIGHT * index + ROW_HEIGHT / 2)
    idle(page)


def pick_option(page, picker, option: str, attempts: int = 3) -> None:
    """Open a select or multiselect and choose ``option``. A click that lands while the picker's expander
    is still opening opens nothing, so the click is tried again, a bounded number of times."""
    picker.wait_for()
    for attempt in range(attempts):
        picker.click()
        try:
            page.get_by_role("option", name=option).click(timeout=5_000)
            return
        except Exception:  # playwright's TimeoutError: no list opened
            if attempt == attempts - 1:
                raise
            page.keyboard.press("Escape")


def add_chatwoot(page, base_url: str, token: str, platform_token: str | None = None) -> None:
    """On the Integrations page: Add menu, CRM, a Chatwoot integration "Acme helpdesk" of account 1 (its
    three toggles on by default), saved; returns once the dialog is gone and the page has settled."""
    open_add_menu(page)
    page.locator(".st-key-add-CRM").get_by_role("button").click()  # the Add menu's CRM button
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    page.locator(".st-key-add-CRM").wait_for(state="hidden")  # the menu closed; open, it sat over the dialog
    dialog.get_by_role("textbox", name="Integration name").fill("Acme helpdesk")
    dialog.get_by_role("textbox", name="Chatwoot Base URL").fill(base_url)
    dialog.get_by_role("textbox", name="Account ID").fill("1")
    dialog.get_by_role("textbox", name="API Access Token").fill(token)
    if platform_token:
        dialog.get_by_role("textbox", name="Platform App Token").fill(platform_token)
    dialog.get_by_role("button", name="Save integration").click()
    page.get_by_role("dialog").wait_for(state="detached")
    idle(page)
