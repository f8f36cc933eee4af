"""QR codes of deep links, for a patient who reads the invite on another screen."""

from __future__ import annotations

import io

import segno


def qr_png(url: str) -> bytes:
    buf = io.BytesIO()
    segno.make(url, error="m").save(buf, kind="png", scale=8, border=3)
    return buf.getvalue()
