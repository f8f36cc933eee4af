"""What each method takes, and reading the parameters of a request."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from playground.emulator.errors import ApiError, bad

# Sent JSON-encoded inside a form or query string; decoded before any method sees them.
JSON_FIELDS = (
    "reply_markup",
    "entities",
    "caption_entities",
    "commands",
    "scope",
    "allowed_updates",
    "link_preview_options",
    "reply_parameters",
    "menu_button",
    "message_ids",
)
# What each emulated method takes, from the Bot API's documentation (the deprecated
# reply_to_message_id, allow_sending_without_reply and disable_web_page_preview included:
# the server still reads them).
_SEND = (
    "business_connection_id",
    "chat_id",
    "message_thread_id",
    "direct_messages_topic_id",
    "disable_notification",
    "protect_content",
    "allow_paid_broadcast",
    "message_effect_id",
    "suggested_post_parameters",
    "reply_parameters",
    "reply_markup",
    "reply_to_message_id",
    "allow_sending_without_reply",
)
_CAPTIONED = ("caption", "parse_mode", "caption_entities", "show_caption_above_media")
_EDIT = ("business_connection_id", "chat_id", "message_id", "inline_message_id", "reply_markup")
_LANG = ("language_code",)
PARAMETERS: dict[str, frozenset[str]] = {
    name: frozenset(params)
    for name, params in {
        "getUpdates": ("offset", "limit", "timeout", "allowed_updates"),
        "getMe": (),
        "logOut": (),
        "close": (),
        "deleteWebhook": ("drop_pending_updates",),
        "setWebhook": (
            "url",
            "certificate",
            "ip_address",
            "max_connections",
            "allowed_updates",
            "drop_pending_updates",
            "secret_token",
        ),
        "getWebhookInfo": (),
        "sendMessage": (
            *_SEND,
            "text",
            "parse_mode",
            "entities",
            "link_preview_options",
            "disable_web_page_preview",
        ),
        "sendPhoto": (*_SEND, *_CAPTIONED, "photo", "has_spoiler"),
        "sendDocument": (
            *_SEND,
            *_CAPTIONED[:3],
            "document",
            "thumbnail",
            "disable_content_type_detection",
        ),
        "editMessageText": (
            *_EDIT,
            "text",
            "parse_mode",
            "entities",
            "link_preview_options",
            "disable_web_page_preview",
        ),
        "editMessageCaption": (*_EDIT, *_CAPTIONED),
        "editMessageReplyMarkup": _EDIT,
        "deleteMessage": ("chat_id", "message_id"),
        "deleteMessages": ("chat_id", "message_ids"),
        "answerCallbackQuery": ("callback_query_id", "text", "show_alert", "url", "cache_time"),
        "setMyCommands": ("commands", "scope", *_LANG),
        "getMyCommands": ("scope", *_LANG),
        "deleteMyCommands": ("scope", *_LANG),
        "sendChatAction": ("business_connection_id", "chat_id", "message_thread_id", "action"),
        "setChatMenuButton": ("chat_id", "menu_button"),
        "getChatMenuButton": ("chat_id",),
        "setMyName": ("name", *_LANG),
        "getMyName": _LANG,
        "setMyDescription": ("description", *_LANG),
        "getMyDescription": _LANG,
        "setMyShortDescription": ("short_description", *_LANG),
        "getMyShortDescription": _LANG,
        "getFile": ("file_id",),
        "leaveChat": ("chat_id",),
    }.items()
}


def refuse_unknown_parameters(method: str, params: dict[str, Any]) -> None:
    """Refuse a parameter the method does not take (uploads named by attach:// aside)."""
    attached = {
        v.removeprefix("attach://")
        for v in params.values()
        if isinstance(v, str) and v.startswith("attach://")
    }
    unknown = sorted(set(params) - PARAMETERS[method] - attached)
    if unknown:
        raise ApiError(
            400,
            f"Bad Request: unknown parameter {', '.join(map(repr, unknown))} for {method}",
            strict=True,
        )


def get_str(p: dict[str, Any], key: str) -> str | None:
    value = p.get(key)
    return None if value is None else str(value)


def get_int(p: dict[str, Any], key: str) -> int | None:
    value = p.get(key)
    if value is None or value == "":
        return None
    try:
        return int(float(value)) if isinstance(value, str) and "." in value else int(value)
    except (TypeError, ValueError):
        raise bad(f"{key} must be a valid Integer") from None


def get_bool(p: dict[str, Any], key: str) -> bool:
    value = p.get(key)
    return value is True or str(value).lower() in ("true", "1")


def chat_id_of(p: dict[str, Any]) -> int | None:
    """The chat a refused request was about, when it names one (for the playground's warning)."""
    raw = p.get("chat_id")
    if raw is None and isinstance(p.get("scope"), dict):
        raw = p["scope"].get("chat_id")
    try:
        return int(raw) if raw not in (None, "") else None
    except (TypeError, ValueError):
        return None


def loggable(p: dict[str, Any]) -> dict[str, Any]:
    """Parameters as recorded in ``calls``/``errors``: uploaded files summarised."""
    return {
        k: f"<file {v.filename!r}>" if isinstance(v, web.FileField) else v for k, v in p.items()
    }
