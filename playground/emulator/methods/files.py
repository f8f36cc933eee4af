"""Files the bot sends: read from an upload, a URL or a file_id; getFile and the download
route."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from playground.emulator.errors import ApiError, bad
from playground.emulator.files import StoredFile, image_size
from playground.emulator.params import get_str
from playground.emulator.state import ServerState


class FileMethods(ServerState):
    """The files of sendPhoto and sendDocument, getFile, and the download route."""

    def _store_file(self, data: bytes | None, name: str, mime: str, photo: bool) -> StoredFile:
        n = next(self._counter)
        prefix = "AgACAgIAAxkDAA" if photo else "BQACAgIAAxkDAA"
        f = StoredFile(f"{prefix}{n:08d}", f"AQAD{n:08d}", data, name, mime)
        if photo:
            f.width, f.height = (image_size(data) if data else None) or (800, 800)
        self._files[f.file_id] = f
        return f

    def _input_file(self, p: dict[str, Any], key: str, photo: bool) -> StoredFile:
        value = p.get(key)
        if isinstance(value, str) and value.startswith("attach://"):
            value = p.get(value[len("attach://") :])
        if isinstance(value, web.FileField):
            data = value.file.read()
            if not data:
                raise bad("file must be non-empty")
            if photo and image_size(data) is None:
                raise bad("IMAGE_PROCESS_FAILED")
            if len(data) > (10 if photo else 50) * 1024 * 1024:
                raise ApiError(413, "Request Entity Too Large")
            return self._store_file(data, value.filename or key, value.content_type, photo)
        if isinstance(value, str) and value:
            if value in self._files:
                return self._files[value]
            if re.match(r"(?i)https?://", value):
                return self._store_file(
                    None,
                    value.rsplit("/", 1)[-1] or key,
                    "image/jpeg" if photo else "application/octet-stream",
                    photo,
                )
            raise bad("wrong file identifier/HTTP URL specified")
        raise bad(f"there is no {key} in the request")

    def _photo_json(self, f: StoredFile) -> list[dict[str, Any]]:
        full = {
            "file_id": f.file_id,
            "file_unique_id": f.unique_id,
            "width": f.width,
            "height": f.height,
        }
        if f.data is not None:
            full["file_size"] = len(f.data)
        scale = 90 / max(f.width, f.height, 1)
        if scale >= 1:
            return [full]
        thumb: dict[str, Any] = {
            "file_id": f.file_id + "_s",
            "file_unique_id": f.unique_id + "s",
            "width": max(1, round(f.width * scale)),
            "height": max(1, round(f.height * scale)),
        }
        self._files.setdefault(thumb["file_id"], f)  # resending the thumbnail's id resends f
        return [thumb, full]

    def _get_file(self, p: dict[str, Any]) -> dict[str, Any]:
        f = self._files.get(get_str(p, "file_id") or "")
        if f is None or f.data is None:
            raise bad("invalid file_id")
        return {
            "file_id": f.file_id,
            "file_unique_id": f.unique_id,
            "file_size": len(f.data),
            "file_path": f.path,
        }

    async def _download(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.Response(status=401, text="Unauthorized")
        for f in self._files.values():
            if f.path == request.match_info["path"] and f.data is not None:
                return web.Response(body=f.data, content_type=f.mime)
        return web.Response(status=404, text="Not Found")
