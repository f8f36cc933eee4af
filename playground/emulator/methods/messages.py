"""Sending, editing and deleting messages, with Telegram's limits and refusals."""

from __future__ import annotations

import time
from typing import Any

from playground.emulator.chats import Chat, Msg
from playground.emulator.errors import NOT_MODIFIED, bad
from playground.emulator.files import StoredFile
from playground.emulator.markup import Markup, parse_markup
from playground.emulator.methods.files import FileMethods
from playground.emulator.params import get_int, get_str
from playground.emulator.text import Entity, format_text


def _document_json(f: StoredFile) -> dict[str, Any]:
    document: dict[str, Any] = {
        "file_id": f.file_id,
        "file_unique_id": f.unique_id,
        "file_name": f.name,
        "mime_type": f.mime,
    }
    if f.data is not None:
        document["file_size"] = len(f.data)
    return {"document": document}


class MessageMethods(FileMethods):
    """sendMessage, sendPhoto, sendDocument, editMessage*, deleteMessage(s), sendChatAction."""

    @staticmethod
    def _check_reply(chat: Chat, p: dict[str, Any]) -> None:
        """Quoting a message that is not in the chat fails unless the bot allowed that."""
        reply = p.get("reply_parameters")
        if not isinstance(reply, dict) or reply.get("allow_sending_without_reply"):
            return
        if reply.get("message_id") is not None and not any(
            m.message_id == reply["message_id"] and not m.deleted for m in chat._all
        ):
            raise bad("message to be replied not found")

    def _message_text(self, p: dict[str, Any]) -> tuple[str, list[Entity]]:
        raw = get_str(p, "text")
        if not raw:
            raise bad("message text is empty")
        text, ents = format_text(raw, p.get("parse_mode"), p.get("entities"))
        if not text.strip():
            raise bad("text must be non-empty")
        return text, ents

    def _caption(self, p: dict[str, Any]) -> tuple[str, list[Entity]]:
        raw = get_str(p, "caption") or ""
        return format_text(raw, p.get("parse_mode"), p.get("caption_entities")) if raw else ("", [])

    def _find(self, chat: Chat, p: dict[str, Any], action: str) -> Msg:
        if p.get("inline_message_id"):
            raise bad("inline messages are not emulated")
        message_id = get_int(p, "message_id")
        if message_id is None:
            raise bad("message identifier is not specified")
        for m in chat._all:
            if m.message_id == message_id and not m.deleted:
                return m
        raise bad(f"message to {action} not found")

    def _new_bot_msg(self, chat: Chat, markup: Markup, **fields: Any) -> Msg:
        msg = Msg(
            chat._new_id(),
            from_bot=True,
            date=int(time.time()),
            buttons=markup.inline,
            markup_json=markup.inline_json,
            reply_keyboard=markup.keyboard,
            **fields,
        )
        if markup.keyboard is not None:
            chat.keyboard = markup.keyboard
        elif markup.remove_keyboard:
            chat.keyboard = None
        chat._add(msg)
        self._record(chat, msg)
        return msg

    def _sendable(
        self, p: dict[str, Any], length: int, limit: int, too_long: str
    ) -> tuple[Chat, Markup]:
        """The chat and buttons of a new message, checked in Telegram's order: the markup,
        the chat, the quoted message, the length, whether the bot may write there."""
        markup = parse_markup(p.get("reply_markup"))
        chat = self._chat(p)
        self._check_reply(chat, p)
        if length > limit:
            raise bad(too_long)
        chat._writable()
        return chat, markup

    def _send_message(self, p: dict[str, Any]) -> dict[str, Any]:
        text, ents = self._message_text(p)
        chat, markup = self._sendable(p, len(text), 4096, "message is too long")
        msg = self._new_bot_msg(
            chat,
            markup,
            text=text,
            entities=ents,
            html=get_str(p, "text"),
            parse_mode=get_str(p, "parse_mode"),
        )
        return self._msg_json(chat, msg)

    def _send_media(self, p: dict[str, Any], key: str) -> dict[str, Any]:
        photo = key == "photo"
        f = self._input_file(p, key, photo)
        caption, ents = self._caption(p)
        chat, markup = self._sendable(p, len(caption), 1024, "message caption is too long")
        msg = self._new_bot_msg(
            chat,
            markup,
            kind=key,
            media={"photo": self._photo_json(f)} if photo else _document_json(f),
            caption=caption or None,
            entities=ents,
            html=get_str(p, "caption"),
            parse_mode=get_str(p, "parse_mode"),
            photo=f.data if photo else None,
            document=None if photo else f.data,
            document_name=None if photo else f.name,
        )
        return self._msg_json(chat, msg)

    def _send_photo(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._send_media(p, "photo")

    def _send_document(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._send_media(p, "document")

    def _edited(self, chat: Chat, msg: Msg, markup: Markup) -> dict[str, Any]:
        msg.buttons, msg.markup_json = markup.inline, markup.inline_json
        msg.edited += 1
        msg.edit_date = int(time.time())
        self._record(chat, msg)
        return self._msg_json(chat, msg)

    def _edit_target(self, p: dict[str, Any]) -> tuple[Chat, Msg]:
        chat = self._chat(p)
        msg = self._find(chat, p, "edit")
        if not msg.from_bot:
            raise bad("message can't be edited")
        return chat, msg

    def _edit_text(self, p: dict[str, Any]) -> dict[str, Any]:
        text, ents = self._message_text(p)
        markup = parse_markup(p.get("reply_markup"))
        chat, msg = self._edit_target(p)
        if msg.kind != "text":
            raise bad("there is no text in the message to edit")
        if len(text) > 4096:
            raise bad("message is too long")
        chat._writable()
        if (text, ents, markup.inline_json) == (msg.text, msg.entities, msg.markup_json):
            raise bad(NOT_MODIFIED)
        msg.text, msg.entities, msg.html = text, ents, get_str(p, "text")
        msg.parse_mode = get_str(p, "parse_mode")
        return self._edited(chat, msg, markup)

    def _edit_caption(self, p: dict[str, Any]) -> dict[str, Any]:
        caption, ents = self._caption(p)
        markup = parse_markup(p.get("reply_markup"))
        chat, msg = self._edit_target(p)
        if msg.kind == "text":
            raise bad("there is no caption in the message to edit")
        if len(caption) > 1024:
            raise bad("message caption is too long")
        chat._writable()
        old = (msg.caption or "", msg.entities, msg.markup_json)
        if (caption, ents, markup.inline_json) == old:
            raise bad(NOT_MODIFIED)
        msg.caption, msg.entities, msg.html = caption or None, ents, get_str(p, "caption")
        msg.parse_mode = get_str(p, "parse_mode")
        return self._edited(chat, msg, markup)

    def _edit_markup(self, p: dict[str, Any]) -> dict[str, Any]:
        markup = parse_markup(p.get("reply_markup"))
        chat, msg = self._edit_target(p)
        chat._writable()
        if markup.inline_json == msg.markup_json:
            raise bad(NOT_MODIFIED)
        return self._edited(chat, msg, markup)

    def _delete(self, p: dict[str, Any]) -> bool:
        chat = self._chat(p)
        msg = self._find(chat, p, "delete")
        msg.deleted = True
        self._record(chat, msg)
        return True

    def _delete_many(self, p: dict[str, Any]) -> bool:
        chat = self._chat(p)
        ids = p.get("message_ids")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise bad("message_ids must be a non-empty Array of at most 100 Integers")
        for m in chat._all:
            if m.message_id in ids and not m.deleted:
                m.deleted = True
                self._record(chat, m)
        return True

    def _chat_action(self, p: dict[str, Any]) -> bool:
        chat = self._chat(p)
        if not get_str(p, "action"):
            raise bad("action is empty")
        chat._writable()
        return True
