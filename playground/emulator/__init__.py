"""A small Telegram Bot API emulator, plus simulated users: the tests drive the bot through
it, and `python -m bot playground` puts a web page in front of it.

The real python-telegram-bot ``Application`` runs against this server over real HTTP
(``ApplicationBuilder().base_url(server.base_url)``), so every request goes through PTB's
own serialisation and error handling.  Refusals are worded the way the official Bot API
server (tdlib/telegram-bot-api) words them, so ``BadRequest`` / ``Forbidden`` /
``Conflict`` are raised by PTB exactly as in production.

Deliberate fidelity points, all taken from the Bot API server's source:

* HTML / MarkdownV2 / Markdown parsing follows tdlib's parsers, error texts included.  A
  bare ``&`` that is not an entity is kept literally (Telegram accepts ``Tom & Jerry``);
  a bare ``<`` is refused.
* Length limits count Unicode code points of the parsed text after Telegram's trimming.
* ``editMessage*`` without ``reply_markup`` removes the inline keyboard, as in Telegram.
* A private chat exists for the bot only after the user wrote to it (``/start`` or any
  update); before that, sends fail with "chat not found".
* A new getUpdates request terminates the one already waiting, which is answered with
  409 "Conflict: terminated by other getUpdates request; ...".
* Updates of a kind the bot did not ask for (``allowed_updates`` of getUpdates or
  setWebhook, kept until asked again) are dropped, as Telegram drops them.
* Groups, supergroups and channels (``SimGroup``, negative ids): members write and tap
  there, the bot is told by ``my_chat_member`` when it is added and when it leaves
  (``leaveChat``), and after leaving its requests about the chat fail with 403.

Two checks are stricter than Telegram, which lets these pass silently although the request
was not what the bot meant: a parameter the method does not take (``parse_mode`` on
``editMessageReplyMarkup``), and a ``reply_markup`` without any buttons (``{}``, an empty
``inline_keyboard``), where the bot should have sent no markup.  Both are refused with 400
and kept in ``errors`` with ``"strict": True``; the tests fail on any of them.

Every refusal is also kept in ``BotAPIServer.errors`` (method, code, description, chat,
time), so a test can assert there were none and the playground page can show a warning
when the bot breaks one of Telegram's rules.  ``revision`` grows with every change a user
could see; ``wait_change`` lets a viewer follow it without polling.
Plain text that Telegram accepts but shows wrong (an HTML escape such as ``&amp;`` in a
pop-up alert, which is never parsed) is kept in ``BotAPIServer.garbled``.

Waiting (``send`` / ``open_link`` / ``tap`` / ``tap_data`` of a SimUser or a SimGroup, and
``SimGroup.add_bot`` / ``post``): the update is queued, then the call waits until (a) the
bot fetched it with getUpdates (or Telegram dropped it, see allowed_updates), (b) at least
``expect`` bot events happened in this chat since then (a message sent, edited or deleted
there, an answerCallbackQuery for a button tapped there, or the bot leaving it), and (c)
no request was in flight or arrived for ``QUIET`` seconds, so trailing messages of the same
update are included.  It returns the bot messages created or edited meanwhile (live
objects, latest state), or raises AssertionError with the transcript on timeout.  Nothing
sleeps for a fixed time: every request wakes the waiters.
"""

from __future__ import annotations

from playground.emulator.chats import Msg
from playground.emulator.errors import ApiError
from playground.emulator.faults import Fault, Hold
from playground.emulator.groups import SimGroup
from playground.emulator.markup import Button
from playground.emulator.params import PARAMETERS
from playground.emulator.server import BotAPIServer
from playground.emulator.users import SimUser, start_command
from playground.emulator.waiting import QUIET

__all__ = [
    "PARAMETERS",
    "QUIET",
    "ApiError",
    "BotAPIServer",
    "Button",
    "Fault",
    "Hold",
    "Msg",
    "SimGroup",
    "SimUser",
    "start_command",
]
