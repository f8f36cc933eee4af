"""`python -m benchmarks`: how fast, how big and how many taps — one table of figures.

Sections (see benchmarks/README.md): per-update cost of the real bot against a bare
python-telegram-bot echo bot through the loopback Bot API emulator; the database at the
scale of a large practice; memory and start-up time; taps per journey. Figures are
printed, never asserted: tests/test_benchmarks.py only checks the report's shape.
"""
