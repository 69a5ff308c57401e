"""The Files API, driven by the official ``anthropic`` SDK against a real server process
on an SQLite store: upload, list in pages, metadata, download, delete, the upload limit."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import anthropic
import httpx
import pytest

from agentjournal.application.uploads import PART_BYTES
from tests.serving import API_KEY, running_server

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"), pytest.mark.timeout(120)]


@pytest.fixture
def client(api_server):  # type: ignore[no-untyped-def]
    return api_server.client()


def test_a_file_is_uploaded_listed_read_downloaded_and_deleted(client, store: Path):
    data = os.urandom(PART_BYTES * 2 + 12345)  # three parts, the last one short
    stored = client.beta.files.upload(file=("data.bin", data, "application/x-custom"))
    assert stored.id.startswith("file_") and stored.type == "file"
    assert (stored.filename, stored.mime_type, stored.size_bytes) == (
        "data.bin",
        "application/x-custom",
        len(data),
    )
    assert stored.downloadable and stored.created_at is not None

    assert client.beta.files.retrieve_metadata(stored.id) == stored
    assert client.beta.files.download(stored.id).read() == data

    again = client.beta.files.upload(file=("copy.bin", data, "application/x-custom"))
    assert again.id != stored.id
    with sqlite3.connect(store) as db:  # the same contents are stored once
        assert db.execute("SELECT count(*), sum(size) FROM blobs_v1").fetchone() == (3, len(data))

    deleted = client.beta.files.delete(stored.id)
    assert (deleted.id, deleted.type) == (stored.id, "file_deleted")
    with pytest.raises(anthropic.NotFoundError):
        client.beta.files.retrieve_metadata(stored.id)
    with pytest.raises(anthropic.NotFoundError):
        client.beta.files.download(stored.id)
    with pytest.raises(anthropic.NotFoundError):
        client.beta.files.delete(stored.id)
    assert [f.id for f in client.beta.files.list()] == [again.id]
    assert client.beta.files.download(again.id).read() == data


def test_files_are_listed_newest_first_a_page_at_a_time(client):
    ids = [client.beta.files.upload(file=(f"note-{n}.txt", f"note {n}".encode())).id for n in range(5)]
    first = client.beta.files.list(limit=2)
    assert [f.id for f in first.data] == ids[::-1][:2] and first.next_page
    assert [f.id for f in first] == ids[::-1]  # the SDK follows the cursor
    assert first.data[0].mime_type == "text/plain"  # guessed from the name


def test_an_empty_file_and_names_the_client_chose(client):
    empty = client.beta.files.upload(file=("empty.txt", b""))
    assert empty.size_bytes == 0 and client.beta.files.download(empty.id).read() == b""
    odd = client.beta.files.upload(file=("rapport final (2).pdf", b"%PDF-1.4"))
    assert odd.filename == "rapport final (2).pdf" and odd.mime_type == "application/pdf"
    assert (
        "filename*=UTF-8''rapport%20final%20%282%29.pdf"
        in (client.beta.files.with_raw_response.download(odd.id).headers["content-disposition"])
    )


def test_what_is_not_an_upload_is_refused_in_the_api_shape(api_server, client):
    headers = {"x-api-key": API_KEY}
    url = f"{api_server.url}/v1/files"
    json_body = httpx.post(url, headers=headers, json={"file": "x"})
    assert json_body.status_code == 400 and json_body.json()["error"]["type"] == "invalid_request_error"
    no_file = httpx.post(url, headers=headers, data={"purpose": "x"}, files={"other": ("a.txt", b"a")})
    assert no_file.status_code == 400 and "'file'" in no_file.json()["error"]["message"]
    broken = httpx.post(
        url,
        headers={**headers, "content-type": "multipart/form-data; boundary=xyz"},
        content=b"--xyz\r\nnonsense",
    )
    assert broken.status_code == 400
    with pytest.raises(anthropic.BadRequestError) as expiring:
        client.beta.files.upload(file=("a.txt", b"a"), expires_in_seconds=3600)
    assert "expires_in_seconds: not supported" in expiring.value.message
    with pytest.raises(anthropic.NotFoundError):
        client.beta.files.retrieve_metadata("file_" + "0" * 32)
    with pytest.raises(anthropic.NotFoundError):
        client.beta.files.retrieve_metadata("sesn_nope")


def test_an_upload_over_the_limit_is_a_413_while_it_arrives(model_server, store: Path):
    limit = PART_BYTES + 10
    with running_server(model_server.base_url, store, extra=("--max-upload-bytes", str(limit))) as server:
        client = server.client()
        fits = client.beta.files.upload(file=("fits.bin", b"x" * limit))
        assert fits.size_bytes == limit
        with pytest.raises(anthropic.APIStatusError) as declared:
            client.beta.files.upload(file=("big.bin", b"x" * (limit + 100_000)))
        assert declared.value.status_code == 413
        assert declared.value.body["error"]["type"] == "request_too_large"  # type: ignore[index]

        def undeclared():  # a body without a length: refused once the file passes the limit
            yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n\r\n'
            for _ in range(3):
                yield b"y" * PART_BYTES
            yield b"\r\n--b--\r\n"

        streamed = httpx.post(
            f"{server.url}/v1/files", content=undeclared(),
            headers={"x-api-key": API_KEY, "content-type": "multipart/form-data; boundary=b"},
        )  # fmt: skip
        assert streamed.status_code == 413 and "upload limit" in streamed.json()["error"]["message"]
        assert [f.id for f in client.beta.files.list()] == [fits.id]
        assert client.beta.files.download(fits.id).read() == b"x" * limit
