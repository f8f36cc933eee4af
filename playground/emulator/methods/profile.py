"""The bot's profile: getMe, its command menus by scope and language, its menu button, name
and descriptions."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from playground.emulator.errors import bad
from playground.emulator.params import get_str
from playground.emulator.state import ServerState
from playground.emulator.users import SimUser


def _bot_command(item: Any) -> dict[str, str]:
    """One BotCommand of setMyCommands, trimmed, with the Bot API server's own checks."""
    if not isinstance(item, dict):
        raise bad("can't parse BotCommand: expected an Object")
    for name in ("command", "description"):
        if not isinstance(item.get(name), str):
            raise bad(f"can't parse BotCommand: Can't find field \"{name}\"")
    command = item["command"].strip().removeprefix("/")
    description = item["description"].strip()
    if not command:
        raise bad("command must be non-empty")
    if len(command) > 32:
        raise bad("command length must not exceed 32")
    if not description:
        raise bad("command description must be non-empty")
    if len(description) > 256:
        raise bad("command description length must not exceed 256")
    return {"command": command, "description": description}


class ProfileMethods(ServerState):
    """getMe, the command menus, the menu button, the bot's name and descriptions."""

    @staticmethod
    def _true(p: dict[str, Any]) -> bool:
        return True

    def _get_me(self, p: dict[str, Any]) -> dict[str, Any]:
        return {
            **self._bot_json(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def commands_for(self, user: SimUser) -> list[dict[str, str]]:
        """The command menu this user's Telegram app shows: the narrowest scope the bot set,
        in the user's language before the language-neutral list, as Telegram resolves it."""
        chat = json.dumps(
            {"chat_id": user.id, "type": "chat"}, sort_keys=True, separators=(",", ":")
        )
        lang = (user.language_code or "")[:2]
        for scope in (chat, '{"type":"all_private_chats"}', "default"):
            for language in ([lang] if lang else []) + [""]:
                if (scope, language) in self.commands:
                    return self.commands[(scope, language)]
        return []

    def _scope_key(self, p: dict[str, Any]) -> tuple[str, str]:
        lang = get_str(p, "language_code") or ""
        scope = p.get("scope")
        if scope is None or scope == {"type": "default"}:
            key = "default"
        else:
            if not isinstance(scope, dict):
                raise bad("botCommandScope must be an Object")
            kind = scope.get("type")
            if kind not in (
                "all_private_chats",
                "all_group_chats",
                "all_chat_administrators",
                "chat",
                "chat_administrators",
                "chat_member",
            ):
                raise bad("unsupported type specified")
            scope = dict(scope)
            if kind.startswith("chat"):
                scope["chat_id"] = self._chat(scope).id
            key = json.dumps(scope, sort_keys=True, separators=(",", ":"))
        if lang and not re.fullmatch(r"[a-z]{2}", lang):
            raise bad("invalid language code specified")
        return key, lang

    def _set_commands(self, p: dict[str, Any]) -> bool:
        raw = p.get("commands") or []
        if not isinstance(raw, list):
            raise bad("expected an Array of BotCommand")
        commands = [_bot_command(item) for item in raw]
        key = self._scope_key(p)
        if len(commands) > 100:
            raise bad("BOT_COMMANDS_TOO_MUCH")
        if any(not re.fullmatch(r"[a-z0-9_]+", c["command"]) for c in commands):
            raise bad("BOT_COMMAND_INVALID")
        if commands:
            self.commands[key] = commands
        else:
            self.commands.pop(key, None)
        return True

    def _get_commands(self, p: dict[str, Any]) -> list[dict[str, str]]:
        return self.commands.get(self._scope_key(p), [])

    def _delete_commands(self, p: dict[str, Any]) -> bool:
        self.commands.pop(self._scope_key(p), None)
        return True

    def _set_menu(self, p: dict[str, Any]) -> bool:
        chat_id = self._chat(p).id if p.get("chat_id") not in (None, "") else None
        button = p.get("menu_button") or {"type": "default"}
        self.menu_buttons[chat_id] = button
        return True

    def _get_menu(self, p: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._chat(p).id if p.get("chat_id") not in (None, "") else None
        return self.menu_buttons.get(chat_id, {"type": "default"})

    def _set_text(self, key: str, store: dict[str, str]) -> Callable[[dict[str, Any]], bool]:
        def setter(p: dict[str, Any]) -> bool:
            lang = get_str(p, "language_code") or ""
            value = get_str(p, key) or ""
            if value:
                store[lang] = value
            else:
                store.pop(lang, None)
            if key == "name" and not lang and value:
                self.bot_name = value
            return True

        return setter

    @staticmethod
    def _get_text(key: str, store: dict[str, str]) -> Callable[[dict[str, Any]], dict[str, str]]:
        def getter(p: dict[str, Any]) -> dict[str, str]:
            return {key: store.get(get_str(p, "language_code") or "", store.get("", ""))}

        return getter
