"""A ``multipart/form-data`` body whose one file is handed on as it arrives.

Starlette's form parser spools every file to a temporary file before the endpoint
sees it; an upload here goes straight to the blob store instead, a piece at a
time, so the server holds no more than a piece of it (and writes it once).
:func:`read_file_field` feeds the request's stream to python-multipart's push
parser and passes the bytes of the ``file`` field to ``write`` (called in a thread,
since it stores) after each piece of the body. Other fields are read and dropped,
each up to :data:`MAX_FIELD_BYTES`, except those refused by name (:data:`REFUSED_FIELDS`). The body is under the client timeout piece by
piece, not whole: a large upload takes as long as it takes, a stalled one is cut off.
"""

from __future__ import annotations

import asyncio
import mimetypes
from collections.abc import Callable
from dataclasses import dataclass, field

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from agentjournal.infrastructure.server.errors import ApiError

FILE_FIELD = "file"

MAX_FIELD_BYTES = 1024
"""The largest value of a field other than the file (``expires_in_seconds`` and the like)."""

REFUSED_FIELDS = frozenset({"expires_in_seconds"})
"""Fields the cloud takes that this server does not honour: refused, not ignored."""

FRAMING_BYTES = 64 * 1024
"""What a body may hold beyond its file (boundaries, part headers, small fields): a
declared ``Content-Length`` over the file limit plus this is refused before reading."""


@dataclass
class FileField:
    """What the body said about its file: the name and media type its part gave."""

    filename: str = ""
    content_type: str = ""

    def media_type(self) -> str:
        """The part's media type, else one guessed from the name, else bytes."""
        given = self.content_type.split(";")[0].strip()
        if given and given != "application/octet-stream":
            return given
        guessed, _ = mimetypes.guess_type(self.filename)
        return guessed or "application/octet-stream"


@dataclass
class _Part:
    name: str = ""
    is_file: bool = False
    size: int = 0
    headers: dict[bytes, bytes] = field(default_factory=dict)


class _Collector:
    """python-multipart's callbacks: track the current part and collect the file's bytes."""

    def __init__(self) -> None:
        self.part = _Part()
        self.found: FileField | None = None
        self.fields: set[str] = set()
        """The names of the other fields the body held."""
        self.pending: list[bytes] = []
        self._header_name = b""
        self._header_value = b""

    def on_part_begin(self) -> None:
        self.part = _Part()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self.part.headers[self._header_name.lower()] = self._header_value
        self._header_name = self._header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.part.headers.get(b"content-disposition", b""))
        self.part.name = options.get(b"name", b"").decode("utf-8", "replace")
        if self.part.name != FILE_FIELD:
            self.fields.add(self.part.name)
            return
        if b"filename" not in options:
            raise ApiError(400, f"the {FILE_FIELD!r} field must be a file (a part with a filename)")
        if self.found is not None:
            raise ApiError(400, f"a body may hold one {FILE_FIELD!r} field")
        self.part.is_file = True
        self.found = FileField(
            filename=options[b"filename"].decode("utf-8", "replace"),
            content_type=self.part.headers.get(b"content-type", b"").decode("latin-1"),
        )

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.part.is_file:
            self.pending.append(data[start:end])
            return
        self.part.size += end - start
        if self.part.size > MAX_FIELD_BYTES:
            raise ApiError(400, f"field {self.part.name!r} is over {MAX_FIELD_BYTES} bytes")

    def take(self) -> bytes:
        data = b"".join(self.pending)
        self.pending.clear()
        return data


async def read_file_field(
    request: Request, write: Callable[[bytes], None], limit: int, seconds: float
) -> FileField:
    """Read the body, passing its file's bytes to ``write``; the file's name and type.
    400 for a body that is not such a form, 413 when it declares more than ``limit``
    bytes of file could fit in, 408 when a piece takes longer than ``seconds``."""
    kind, params = parse_options_header(request.headers.get("content-type", ""))
    if kind != b"multipart/form-data" or not params.get(b"boundary"):
        raise ApiError(400, "an upload is a multipart/form-data body with a 'file' field")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + FRAMING_BYTES:
        raise ApiError(413, f"request body of {declared} bytes is over the upload limit of {limit} bytes")
    collector = _Collector()
    parser = MultipartParser(
        params[b"boundary"],
        {
            "on_part_begin": collector.on_part_begin,
            "on_header_field": collector.on_header_field,
            "on_header_value": collector.on_header_value,
            "on_header_end": collector.on_header_end,
            "on_headers_finished": collector.on_headers_finished,
            "on_part_data": collector.on_part_data,
        },
    )
    pieces = aiter(request.stream())
    try:
        while True:
            try:
                async with asyncio.timeout(seconds):
                    piece = await anext(pieces)
            except StopAsyncIteration:
                break
            parser.write(piece)
            if collector.pending:
                await asyncio.to_thread(write, collector.take())
        parser.finalize()
    except TimeoutError:
        raise ApiError(408, f"the upload stalled: nothing arrived for {seconds:g} seconds") from None
    except FormParserError as e:
        raise ApiError(400, f"the body is not valid multipart/form-data: {e}") from None
    if collector.found is None:
        raise ApiError(400, f"the body has no {FILE_FIELD!r} field")
    refused = sorted(collector.fields & REFUSED_FIELDS)
    if refused:
        raise ApiError(400, f"{refused[0]}: not supported by this server yet (files here do not expire)")
    return collector.found
