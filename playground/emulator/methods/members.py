"""The bot's membership of chats: a user blocking it, the bot added to a group or leaving it,
each told to the bot with a my_chat_member update."""

from __future__ import annotations

import time
from typing import Any

from playground.emulator.errors import bad
from playground.emulator.groups import SimGroup
from playground.emulator.updates import UpdateQueue
from playground.emulator.users import SimUser


class MemberMethods(UpdateQueue):
    """A user blocking the bot, and the bot's membership of groups (leaveChat)."""

    def block(self, user_id: int) -> None:
        """The user blocks the bot; Telegram then sends the bot a my_chat_member update."""
        self._set_blocked(self._known(user_id), True)

    def unblock(self, user_id: int) -> None:
        self._set_blocked(self._known(user_id), False)

    def _set_blocked(self, user: SimUser, blocked: bool) -> None:
        if user.blocked == blocked:
            return
        user.blocked = blocked
        if user.started:
            old, new = ("member", "kicked") if blocked else ("kicked", "member")
            bot = self._bot_json()
            self._enqueue(
                user,
                {
                    "my_chat_member": {
                        "chat": user.chat_json(),
                        "from": user.user_json(),
                        "date": int(time.time()),
                        "old_chat_member": {"user": bot, "status": old, "until_date": 0},
                        "new_chat_member": {"user": bot, "status": new, "until_date": 0},
                    }
                },
            )

    def _bot_status(self, group: SimGroup, status: str, by: SimUser | None) -> int:
        """The bot's membership in a group changes; Telegram tells it (my_chat_member),
        naming who changed it (``None``: the bot itself, leaving)."""
        old = (group.bot_status if group.bot_is_member else None) or "left"
        group.bot_status = status
        return self._enqueue(
            group,
            {
                "my_chat_member": {
                    "chat": group.chat_json(),
                    "from": by.user_json() if by else self._bot_json(),
                    "date": int(time.time()),
                    "old_chat_member": self._member_json(group, old),
                    "new_chat_member": self._member_json(group, status),
                }
            },
        )

    def _member_json(self, group: SimGroup, status: str) -> dict[str, Any]:
        d: dict[str, Any] = {"user": self._bot_json(), "status": status}
        if status == "administrator":  # Telegram lists every right, granted or not
            rights = [
                "can_delete_messages",
                "can_manage_video_chats",
                "can_restrict_members",
                "can_promote_members",
                "can_change_info",
                "can_invite_users",
                "can_post_stories",
                "can_edit_stories",
                "can_delete_stories",
            ]
            d |= {"can_be_edited": False, "is_anonymous": False, "can_manage_chat": True}
            d |= dict.fromkeys(rights, False)
            if group.kind == "channel":
                d |= {"can_post_messages": True, "can_edit_messages": False}
        return d

    def _leave_chat(self, p: dict[str, Any]) -> bool:
        chat = self._chat(p)
        if not isinstance(chat, SimGroup):
            raise bad("Can't leave private chats")
        self._record(chat, None)
        self._bot_status(chat, "left", None)  # Telegram tells the bot that it left, too
        return True
