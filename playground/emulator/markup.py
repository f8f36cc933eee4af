"""reply_markup: inline keyboards (what a tap sends), reply keyboards, their removal."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from playground.emulator.errors import ApiError, bad


@dataclass(frozen=True)
class Button:
    """An inline keyboard button as the user sees it."""

    text: str
    callback_data: str | None = None
    url: str | None = None
    kind: str = "callback_data"  # the field that defines what a tap does


@dataclass
class Markup:
    inline: list[list[Button]] = field(default_factory=list)
    inline_json: list[list[dict[str, Any]]] | None = None
    keyboard: list[list[str]] | None = None
    remove_keyboard: bool = False


_INLINE_KINDS = (
    "callback_game",
    "pay",
    "switch_inline_query",
    "switch_inline_query_chosen_chat",
    "switch_inline_query_current_chat",
    "login_url",
    "web_app",
    "copy_text",
)


def _button_url_ok(url: str) -> bool:
    parts = urlsplit(url if "://" in url else "https://" + url)
    if parts.scheme.lower() == "tg":
        return bool(parts.netloc or parts.path)
    host = parts.hostname or ""
    return parts.scheme.lower() in ("http", "https") and "." in host.strip(".")


def parse_markup(raw: Any) -> Markup:
    """Validate reply_markup like the Bot API server (local checks) and Telegram (server checks)."""
    if raw is None or raw == "":
        return Markup()
    if not isinstance(raw, dict):
        raise bad("object expected as reply markup")
    shown = ("keyboard", "inline_keyboard", "remove_keyboard", "hide_keyboard", "force_reply")
    if not any(raw.get(k) for k in shown):
        raise ApiError(
            400,
            "Bad Request: reply markup without buttons: send no reply_markup instead",
            strict=True,
        )
    result = Markup()
    if isinstance(raw.get("keyboard"), list) and raw["keyboard"]:
        result.keyboard = _reply_keyboard(raw["keyboard"])
        return result
    inline = raw.get("inline_keyboard")
    if isinstance(inline, list) and inline:
        _add_inline_keyboard(result, inline)
    result.remove_keyboard = bool(raw.get("remove_keyboard") or raw.get("hide_keyboard"))
    return result


def _reply_keyboard(keyboard: list[Any]) -> list[list[str]]:
    """The labels of a reply keyboard, row by row."""
    rows: list[list[str]] = []
    for row in keyboard:
        if not isinstance(row, list):
            raise bad('field "keyboard" must be an Array of Arrays')
        labels: list[str] = []
        for b in row:
            label = b if isinstance(b, str) else b.get("text") if isinstance(b, dict) else None
            if not isinstance(label, str):
                raise bad(
                    "can't parse keyboard button: KeyboardButton must be a String or an Object"
                )
            if not label:
                raise bad("BUTTON_TEXT_INVALID")
            labels.append(label)
        rows.append(labels)
    return rows


def _add_inline_keyboard(result: Markup, inline: list[Any]) -> None:
    """The inline keyboard's buttons, and its rows as Telegram echoes them back."""
    count = 0
    for row in inline:
        if not isinstance(row, list):
            raise bad(
                'field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays'
            )
        buttons: list[Button] = []
        echo: list[dict[str, Any]] = []
        for b in row:
            count += 1
            button, shown = _inline_button(b)
            buttons.append(button)
            echo.append(shown)
        if buttons:
            result.inline.append(buttons)
            result.inline_json = [*(result.inline_json or []), echo]
    if count > 100:
        raise bad("reply markup is too long")


def _inline_button(b: Any) -> tuple[Button, dict[str, Any]]:
    """One inline button, and the JSON Telegram returns for it (its text and its kind)."""
    if not isinstance(b, dict):
        raise bad("can't parse inline keyboard button: InlineKeyboardButton must be an Object")
    if not isinstance(b.get("text"), str):
        raise bad("can't parse inline keyboard button: Can't find field \"text\"")
    text = b["text"]
    # The Bot API server takes the first non-empty kind in this order.
    if b.get("url"):
        button, extra = Button(text, url=str(b["url"]), kind="url"), {"url": b["url"]}
    elif b.get("callback_data"):
        data = str(b["callback_data"])
        button, extra = Button(text, callback_data=data), {"callback_data": data}
    else:
        kind = next((k for k in _INLINE_KINDS if k in b), None)
        if kind is None:
            raise bad(
                "can't parse inline keyboard button: Text buttons are "
                "unallowed in the inline keyboard"
            )
        button, extra = Button(text, kind=kind), {kind: b[kind]}
    if not text.strip():
        raise bad("BUTTON_TEXT_INVALID")
    if button.callback_data is not None and len(button.callback_data.encode()) > 64:
        raise bad("BUTTON_DATA_INVALID")
    if button.url is not None and not _button_url_ok(button.url):
        raise bad("BUTTON_URL_INVALID")
    return button, {"text": text, **extra}
