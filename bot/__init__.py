"""portal-bot: a Telegram assistant for a medical practice's patient portal."""
