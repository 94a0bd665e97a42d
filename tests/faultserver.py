"""A small fault-injecting OpenAI-compatible HTTP server for tests and benchmarks.

It listens on a real socket on 127.0.0.1 (random port) and answers
``POST /v1/chat/completions`` from a script of outcomes, one per request, then ``"ok"``:

- ``"ok"``: a valid ``chat.completion`` (or, with ``"stream": true``, SSE chunks, a usage
  chunk when ``stream_options.include_usage`` is set, and ``[DONE]``)
- ``"500"``, ``"503"``, ``"429"`` (with ``Retry-After``), ``"400"``, ``"401"``, ``"404"``:
  that status with an OpenAI-style error body
- ``"timeout"``: hang for ``hang_s`` seconds, then close without answering
- ``"malformed"``: 200 with the truncated JSON body ``{"choices": [``
- ``"empty"``: 200 with ``"choices": []`` (streams: only ``[DONE]``)
- ``"drop"``: close the connection without any response
- ``"cut"``: start a reply and close the connection half-way (streams: after one delta)

``reject_stream_options=True`` answers 400 to any request carrying ``stream_options``, as
some servers do; ``reject_tools=True`` answers 400 to any request carrying ``tools``, with
the message ``vllm serve`` gives when started without its tool-calling flags.
``keep_alive=True`` keeps connections open after complete answers, JSON or streamed, like
most real servers (a dropped, hung or cut answer always closes its connection).
``GET /v1/models`` lists the one model ``"fault-model"``.

For load and fail-over tests (and the harness scaling benchmark): ``latency_s`` delays every
answer; ``slots`` bounds how many requests are served at once (the rest queue, like an
inference server's parallel slots); ``respond(body)`` computes an ``"ok"`` reply from the
request (a string, or an assistant message dict with ``content``/``tool_calls``);
``port`` binds a fixed port (to restart a server where it was); :meth:`FaultServer.kill`
dies like a crashed process, resetting every open connection. A kill lands between
answers, never half-way through one (the ``"cut"`` outcome covers that), so what a client
sees is deterministic: every request in flight gets no answer at all.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

OUTCOMES = frozenset(
    {"ok", "500", "503", "429", "400", "401", "404", "timeout", "malformed", "empty", "drop", "cut"}
)

_ERRORS = {
    400: ("invalid_request_error", "bad request: the fault server was told to reject this"),
    401: ("authentication_error", "Incorrect API key provided"),
    404: ("not_found_error", "The model `fault-model` does not exist"),
    429: ("rate_limit_error", "Rate limit reached, slow down"),
    500: ("server_error", "The server had an error while processing your request"),
    503: ("server_error", "The server is overloaded"),
}

_NO_AUTO_TOOLS = (  # what `vllm serve` answers to tools= without its tool-calling flags
    '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set'
)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # many clients connect at once in load tests


class FaultServer:
    """Context manager running the fault server in a daemon thread.

    ``url`` is the base URL (``http://127.0.0.1:PORT/v1``); ``requests`` holds the JSON
    bodies of the chat requests received, ``headers`` their headers (lower-case names),
    ``outcomes`` what each one was answered with.
    """

    def __init__(
        self,
        script: list[str] | None = None,
        *,
        reply: str = "ok",
        latency_s: float = 0.0,
        hang_s: float = 5.0,
        retry_after: str | None = "0",
        tool_calls: list[dict[str, Any]] | None = None,
        reject_stream_options: bool = False,
        reject_tools: bool = False,
        keep_alive: bool = False,
        respond: Callable[[dict[str, Any]], str | dict[str, Any]] | None = None,
        slots: int | None = None,
        port: int = 0,
    ) -> None:
        unknown = [s for s in script or [] if s not in OUTCOMES]
        if unknown:
            raise ValueError(f"unknown fault server outcomes {unknown}; known: {sorted(OUTCOMES)}")
        self.script = list(script or [])
        self.reply = reply
        self.latency_s = latency_s
        self.hang_s = hang_s
        self.retry_after = retry_after
        self.tool_calls = tool_calls
        self.reject_stream_options = reject_stream_options
        self.reject_tools = reject_tools
        self.keep_alive = keep_alive
        self.respond = respond
        self.slots = threading.BoundedSemaphore(slots) if slots else None
        self._port = port
        self._conns: set[socket.socket] = set()
        self._writing = 0
        self._writes = threading.Condition()
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.outcomes: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the fault server is not running; use it as a context manager")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FaultServer:
        server = _Server(("127.0.0.1", self._port), _make_handler(self))
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.02,), name="faultserver", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()  # wakes handlers that hang
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def kill(self) -> None:
        """Die like a crashed process: stop listening and reset every open connection."""
        self._stop.set()
        with self._writes:  # let answers being written finish; no new one starts
            self._writes.wait_for(lambda: self._writing == 0, timeout=5)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                conn.close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _next_outcome(self, body: dict[str, Any], headers: dict[str, str]) -> str | None:
        """Records a request and picks its outcome; None once killed or stopped.

        The check and the record share the lock, so a request read in the instant of a
        kill is either counted before ``kill`` returns or never.
        """
        with self._lock:
            if self._stop.is_set():
                return None
            self.requests.append(body)
            self.headers.append(headers)
            outcome = self.script.pop(0) if self.script else "ok"
            if self.reject_stream_options and "stream_options" in body and outcome == "ok":
                outcome = "400"
            if self.reject_tools and body.get("tools") and outcome == "ok":
                outcome = "400"
            self.outcomes.append(outcome)
            return outcome

    @contextlib.contextmanager
    def _answering(self) -> Any:
        """Yields whether to answer: not once the server is stopped or killed."""
        with self._writes:
            if self._stop.is_set():
                answer = False
            else:
                answer = True
                self._writing += 1
        try:
            yield answer
        finally:
            if answer:
                with self._writes:
                    self._writing -= 1
                    self._writes.notify_all()

    def _reply(self, body: dict[str, Any]) -> tuple[str, list[dict[str, Any]] | None]:
        """The reply text and tool calls for an ``"ok"`` answer to ``body``."""
        if self.respond is None:
            return self.reply, self.tool_calls
        out = self.respond(body)
        if isinstance(out, str):
            return out, None
        return out.get("content") or "", out.get("tool_calls") or None


def _completion_body(
    server: FaultServer, model: str, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    text, tool_calls = server._reply(body or {})
    message: dict[str, Any] = {"role": "assistant", "content": text}
    finish = "stop"
    if tool_calls:
        message = {"role": "assistant", "content": None, "tool_calls": tool_calls}
        finish = "tool_calls"
    return {
        "id": "chatcmpl-fault",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
    }


def _stream_chunks(
    server: FaultServer, model: str, usage: bool, body: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-fault",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    text, tool_calls = server._reply(body or {})
    chunks = [chunk({"role": "assistant", "content": ""})]
    if tool_calls:
        for i, tc in enumerate(tool_calls):
            fn = tc["function"]
            args = fn["arguments"]
            half = len(args) // 2
            head = {"id": tc["id"], "type": "function", "function": {"name": fn["name"]}}
            chunks.append(chunk({"tool_calls": [{"index": i, **head}]}))
            for piece in (args[:half], args[half:]):
                chunks.append(
                    chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]})
                )
        chunks.append(chunk({}, "tool_calls"))
    else:
        words = text.split(" ")
        pieces = [w if i == 0 else " " + w for i, w in enumerate(words)]
        chunks.extend(chunk({"content": p}) for p in pieces)
        chunks.append(chunk({}, "stop"))
    if usage:
        chunks.append(
            {
                "id": "chatcmpl-fault",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": model,
                "choices": [],
                "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
            }
        )
    return chunks


def _make_handler(server: FaultServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # headers and body are two writes: without this, Nagle and delayed ACKs add ~40 ms
        disable_nagle_algorithm = True
        # HTTP/1.1 so streams can be chunked (and a cut stream is a real protocol error).
        # Responses close their connection unless ``keep_alive`` (then complete ones keep it).
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def setup(self) -> None:
            super().setup()
            with server._lock:
                server._conns.add(self.connection)

        def finish(self) -> None:
            with server._lock:
                server._conns.discard(self.connection)
            with contextlib.suppress(OSError):
                super().finish()

        def _head(self, status: int, headers: dict[str, str], close: bool = True) -> None:
            self.close_connection = close
            self.send_response(status)
            for key, value in {**headers, **({"Connection": "close"} if close else {})}.items():
                self.send_header(key, value)
            self.end_headers()

        def _send_json(
            self, status: int, data: object, headers: dict[str, str] | None = None
        ) -> None:
            body = data if isinstance(data, bytes) else json.dumps(data).encode()
            ctype = {"Content-Type": "application/json", "Content-Length": str(len(body))}
            self._head(status, {**ctype, **(headers or {})}, close=not server.keep_alive)
            self.wfile.write(body)

        def _not_found(self) -> None:
            self._send_json(
                404, {"error": {"message": f"no route {self.path}", "type": "not_found"}}
            )

        def do_GET(self) -> None:
            if self.path.rstrip("/").endswith("/models"):
                self._send_json(
                    200, {"object": "list", "data": [{"id": "fault-model", "object": "model"}]}
                )
            else:
                self._not_found()

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if not self.path.rstrip("/").endswith("/chat/completions"):
                return self._not_found()
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                return self._send_json(400, {"error": {"message": "request body is not JSON"}})
            headers = {k.lower(): v for k, v in self.headers.items()}
            outcome = server._next_outcome(body, headers)
            if outcome is None:  # a dead server answers nothing
                self.close_connection = True
                return None
            with server.slots or contextlib.nullcontext():
                if server.latency_s:
                    server._stop.wait(server.latency_s)
                with server._answering() as answer:
                    if not answer:  # killed or stopped: no answer
                        self.close_connection = True
                        return None
                    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                        self._answer(outcome, body)  # errors: the client gave up first
            return None

        def _answer(self, outcome: str, body: dict[str, Any]) -> None:
            model = str(body.get("model", "fault-model"))
            stream = bool(body.get("stream"))
            if outcome.isdigit():
                status = int(outcome)
                kind, message = _ERRORS[status]
                message = message.replace("fault-model", model)
                if status == 400 and "stream_options" in body and server.reject_stream_options:
                    message = "Unrecognized request argument supplied: stream_options"
                if status == 400 and body.get("tools") and server.reject_tools:
                    message = _NO_AUTO_TOOLS
                retry = status in (429, 503) and server.retry_after is not None
                headers = {"Retry-After": str(server.retry_after)} if retry else {}
                error = {"error": {"message": message, "type": kind, "code": None}}
                self._send_json(status, error, headers)
            elif outcome in ("timeout", "drop"):
                if outcome == "timeout":
                    server._stop.wait(server.hang_s)
                self.close_connection = True
            elif outcome == "malformed":
                if stream:
                    self._sse([b'{"choices": ['])
                else:
                    self._send_json(200, b'{"choices": [')
            elif outcome == "empty":
                data = {**_completion_body(server, model, body), "choices": []}
                if stream:
                    self._sse([])
                else:
                    self._send_json(200, data)
            elif outcome == "cut":
                if stream:
                    chunks = _stream_chunks(server, model, usage=False, body=body)[:2]
                    self._sse([json.dumps(c).encode() for c in chunks], cut=True)
                else:
                    full = json.dumps(_completion_body(server, model, body)).encode()
                    self._head(
                        200, {"Content-Type": "application/json", "Content-Length": str(len(full))}
                    )
                    self.wfile.write(full[: len(full) // 2])
            elif stream:
                usage = bool((body.get("stream_options") or {}).get("include_usage"))
                chunks = _stream_chunks(server, model, usage, body)
                self._sse([json.dumps(c).encode() for c in chunks])
            else:
                self._send_json(200, _completion_body(server, model, body))

        def _sse(self, events: list[bytes], cut: bool = False) -> None:
            """Send SSE ``data:`` events (then ``[DONE]``) with chunked encoding.

            ``cut`` stops half-way through the next HTTP chunk instead, as a crashed
            server would.
            """
            headers = {"Content-Type": "text/event-stream", "Transfer-Encoding": "chunked"}
            self._head(200, headers, close=cut or not server.keep_alive)
            for data in [*events, *([] if cut else [b"[DONE]"])]:
                event = b"data: " + data + b"\n\n"
                self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
                self.wfile.flush()
            self.wfile.write(b"ff\r\ndata: {" if cut else b"0\r\n\r\n")
            self.wfile.flush()

    return Handler
