"""Files the bot uploads (photos, documents), kept to be downloaded or sent again by id."""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass


@dataclass
class StoredFile:
    file_id: str
    unique_id: str
    data: bytes | None
    name: str
    mime: str
    width: int = 0
    height: int = 0

    @property
    def path(self) -> str:
        return f"files/{self.unique_id}_{re.sub(r'[^A-Za-z0-9._-]', '_', self.name)}"


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG, GIF or JPEG; None if it does not look like an image."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        w, h = struct.unpack(">II", data[16:24])
        return int(w), int(h)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        w, h = struct.unpack("<HH", data[6:10])
        return int(w), int(h)
    if data.startswith(b"\xff\xd8"):
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker = data[i + 1]
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                h, w = struct.unpack(">HH", data[i + 5 : i + 9])
                return int(w), int(h)
            i += 2 + struct.unpack(">H", data[i + 2 : i + 4])[0]
        return None
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return 512, 512
    return None
