"""ConversationHandler state machines, one module per flow."""

from __future__ import annotations

import warnings
from typing import Any

from telegram.ext import ConversationHandler
from telegram.warnings import PTBUserWarning


def conversation(timeout: float, **kwargs: Any) -> ConversationHandler[Any]:
    """A per-user, per-chat conversation whose buttons work on the latest prompt.

    per_message=False is deliberate (the flows mix typed answers and buttons), so PTB's
    construction-time hint about tracking CallbackQueryHandlers per message does not apply.
    """
    kwargs.setdefault("per_user", True)
    kwargs.setdefault("per_chat", True)
    kwargs.setdefault("per_message", False)
    kwargs["conversation_timeout"] = timeout
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*per_message.*", category=PTBUserWarning)
        return ConversationHandler(**kwargs)
