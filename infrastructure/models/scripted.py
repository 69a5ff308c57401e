"""A local OpenAI-compatible chat completions server with scripted replies.

It lets agentjournal run end to end, over real HTTP through litellm, where no
model provider is reachable: in the test suite and in the demo. It is not a
model. Each request takes the next :class:`Reply` from its script; with the
script empty, a small rule-based responder answers:

* a line ``$ COMMAND`` in the prompt becomes an ``execute_command`` tool call;
* "what is my X?" is answered from an earlier "my X is Y" in the conversation,
  which shows that the whole history reached the model;
* after a tool result, it reports what the tool returned;
* anything else gets an acknowledgement naming how many messages it saw.

Streaming (SSE) and plain responses, tool calls, and usage (with
``stream_options.include_usage``) follow the OpenAI wire format. Usage is
counted as one token per four characters, so it is predictable.
"""

from __future__ import annotations

import argparse
import json
import re
import select
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import msgspec


class ScriptedToolCall(msgspec.Struct, frozen=True):
    """A tool call to send. ``arguments`` is a JSON object, or raw text sent as it is
    (a model can send anything); ``id`` is generated unless given."""

    name: str
    arguments: dict[str, Any] | str = {}
    id: str = ""


class Reply(msgspec.Struct, frozen=True):
    """One scripted response. ``status`` other than 200 answers with that HTTP error;
    ``delay`` waits between streamed chunks (to test interruption); ``stall`` waits that
    many seconds before answering anything at all, as a hung model does, unless the
    client hangs up first. ``cut`` drops a streamed reply's connection once that many
    characters of its text are sent (0: before any), before its tool calls, its final
    chunk and ``[DONE]``, as a connection lost mid-stream does. ``hold`` stops a streamed
    reply after its first piece until :meth:`ScriptedModelServer.release` (or until the
    client hangs up): a turn is then mid-reply for exactly as long as a test needs,
    however busy the machine."""

    text: str = ""
    tool_calls: list[ScriptedToolCall] = []
    status: int = 200
    error: str = ""
    delay: float = 0.0
    stall: float = 0.0
    cut: int | None = None
    hold: bool = False
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int = 0


def count_tokens(text: str) -> int:
    return max(1, len(text) // 4)


class ScriptedModelServer:
    """Serves on 127.0.0.1 in a background thread. Use as a context manager."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.script: deque[Reply] = deque()
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._released = threading.Event()
        self._server = _QuietServer((host, port), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        assert isinstance(host, str)
        return f"http://{host}:{port}/v1"

    def enqueue(self, *replies: Reply) -> None:
        with self._lock:
            self.script.extend(replies)

    def start(self) -> ScriptedModelServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> ScriptedModelServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def release(self) -> None:
        """Let the replies that hold (``Reply.hold``) go on to their end: those held now,
        and those requested later, until :meth:`reset`."""
        with self._lock:
            self._released.set()

    def reset(self) -> None:
        """An empty script and request log, with the replies held so far released: the
        server as new, for the next test."""
        with self._lock:
            self.script.clear()
            self.requests.clear()
            self._released.set()
            self._released = threading.Event()

    def wait_for_requests(self, count: int, timeout: float = 60.0) -> None:
        """Block until ``count`` requests have arrived since ``requests`` was last cleared:
        a barrier for tests that must act while a client is mid-request."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.requests) >= count, timeout):
                raise TimeoutError(f"{len(self.requests)} of {count} requests arrived in {timeout:g} s")

    def next_reply(self, request: dict[str, Any]) -> tuple[Reply, threading.Event]:
        """The reply to ``request``, and the event that releases it if it holds."""
        with self._arrived:
            self.requests.append(request)
            self._arrived.notify_all()
            if self.script:
                return self.script.popleft(), self._released
            released = self._released
        return respond(request.get("messages", [])), released


def respond(messages: list[dict[str, Any]]) -> Reply:
    """The rule-based responder used when the script is empty."""
    last = messages[-1] if messages else {"role": "user", "content": ""}
    if last.get("role") == "tool":
        output = str(last.get("content") or "").strip()
        shown = output if len(output) <= 400 else output[:400] + "..."
        return Reply(text=f"The tool returned:\n{shown}")
    prompt = str(last.get("content") or "")
    commands = re.findall(r"^\s*\$ (.+)$", prompt, re.M)
    if commands:
        return Reply(
            text="I'll run that.",
            tool_calls=[ScriptedToolCall("execute_command", {"command": c}) for c in commands],
        )
    question = re.search(r"what is my ([\w ]+?)\s*\?", prompt, re.I)
    if question:
        subject = question.group(1).strip()
        for earlier in reversed(messages[:-1]):
            if earlier.get("role") != "user":
                continue
            fact = re.search(rf"my {re.escape(subject)} is ([^.,;!\n]+)", str(earlier.get("content")), re.I)
            if fact:
                return Reply(text=f"Your {subject} is {fact.group(1).strip()}.")
        return Reply(text=f"I don't know your {subject} yet.")
    seen = sum(1 for m in messages if m.get("role") != "system")
    return Reply(text=f"Noted. (scripted model: {seen} messages in this conversation so far)")


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (a timeout, a killed process) is expected here, not an error."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _handler(server: ScriptedModelServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            if self.path.rstrip("/").endswith("/models"):
                self._json(200, {"object": "list", "data": [{"id": "scripted", "object": "model"}]})
            else:
                self._json(404, {"error": {"message": "not found"}})

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except json.JSONDecodeError:
                self._json(400, {"error": {"message": "request body is not JSON"}})
                return
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self._json(404, {"error": {"message": f"no route {self.path}"}})
                return
            reply, released = server.next_reply(body)
            if reply.stall and not self._still_there_after(reply.stall):
                self.close_connection = True
                return
            if reply.status != 200:
                message = reply.error or f"scripted error {reply.status}"
                self._json(reply.status, {"error": {"message": message, "type": "scripted"}})
                return
            completion = _Completion(body, reply)
            if body.get("stream"):
                self._stream(completion, reply.delay, released if reply.hold else None)
            else:
                self._json(200, completion.whole())

        def _still_there_after(self, seconds: float) -> bool:
            """Say nothing for ``seconds``; False if the client hung up meanwhile (its socket
            turns readable at end of file), so a stalled handler ends with its client."""
            readable, _, _ = select.select([self.connection], [], [], seconds)
            return not readable

        def _held_until(self, released: threading.Event) -> bool:
            """Say nothing more until ``released``; False if the client hung up first."""
            while not released.wait(0.05):
                if not self._still_there_after(0):
                    return False
            return True

        def _json(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _stream(self, completion: _Completion, delay: float, released: threading.Event | None) -> None:
            """Stream the reply; when ``released`` is given, hold after its first piece
            (the chunk after the one naming the role) until it is set."""
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("cache-control", "no-cache")
            self.send_header("connection", "close")
            self.end_headers()
            self.close_connection = True
            try:
                for number, chunk in enumerate(completion.chunks()):
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                    if number == 1 and released is not None and not self._held_until(released):
                        return
                    if delay:
                        time.sleep(delay)
                if completion.reply.cut is None:
                    self.wfile.write(b"data: [DONE]\n\n")
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass

    return Handler


class _Completion:
    """One reply rendered in the chat completions format."""

    def __init__(self, request: dict[str, Any], reply: Reply) -> None:
        self.request = request
        self.reply = reply
        self.id = f"chatcmpl-{uuid.uuid4().hex[:12]}"
        self.created = int(time.time())
        self.model = str(request.get("model", "scripted"))
        self.calls: list[dict[str, Any]] = [
            {
                "id": c.id or f"call_{uuid.uuid4().hex[:12]}",
                "type": "function",
                "function": {
                    "name": c.name,
                    "arguments": c.arguments if isinstance(c.arguments, str) else json.dumps(c.arguments),
                },
            }
            for c in reply.tool_calls
        ]

    def usage(self) -> dict[str, Any]:
        r = self.reply
        prompt = r.prompt_tokens
        if prompt is None:
            prompt = count_tokens(json.dumps(self.request.get("messages", [])))
        completion = r.completion_tokens
        if completion is None:
            completion = count_tokens(r.text + "".join(c["function"]["arguments"] for c in self.calls))
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": r.cached_tokens},
        }

    @property
    def finish_reason(self) -> str:
        return "tool_calls" if self.calls else "stop"

    def whole(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.reply.text or None}
        if self.calls:
            message["tool_calls"] = self.calls
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": self.finish_reason}],
            "usage": self.usage(),
        }

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    def chunks(self) -> Iterator[dict[str, Any]]:
        """The stream's chunks; only those sent before the connection drops, for a ``cut`` reply."""
        yield self._chunk({"role": "assistant", "content": ""})
        cut = self.reply.cut
        text = self.reply.text if cut is None else self.reply.text[:cut]
        for start in range(0, len(text), 8):
            yield self._chunk({"content": text[start : start + 8]})
        if cut is not None:
            return
        for index, call in enumerate(self.calls):
            arguments = call["function"]["arguments"]
            yield self._chunk({"tool_calls": [{
                "index": index, "id": call["id"], "type": "function",
                "function": {"name": call["function"]["name"], "arguments": ""},
            }]})  # fmt: skip
            for start in range(0, len(arguments), 16):
                piece = arguments[start : start + 16]
                yield self._chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
        yield self._chunk({}, self.finish_reason)
        if (self.request.get("stream_options") or {}).get("include_usage"):
            yield {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [],
                "usage": self.usage(),
            }


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the scripted OpenAI-compatible model.")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    with ScriptedModelServer(port=args.port) as server:
        print(f"scripted model serving at {server.base_url}", flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
