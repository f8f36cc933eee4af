"""Tooling around the bot, never imported by the running bot: the playground
(`python -m bot playground`: runner.py, the Bot API emulator in emulator/, the page in
page.py and static/) and the demo family (`python -m bot seed-demo`: demo.py)."""
