"""The ``agentjournal`` command line.

Reading commands (list, show, log, state, timeline, diff, verify) touch only the
event store and the summary view; the model and compute adapters load only for
commands that run a turn, so inspecting a log stays fast.

Every reading command, and run and fork, takes --json: one JSON object per line
for lists (list, log, timeline, verify), one object otherwise (show, state, diff,
the outcome of run, the new session of fork). The shapes are those of the module
agentjournal.application.views, the same the Python API returns.

Exit status:
  0    ok
  1    failure: the model, the store or the sandbox failed, or verify found a broken chain
  2    usage error or bad input: a malformed option, id, config or text, or a command
       the session refuses as it stands (busy, terminated, no turn to interrupt)
  3    not found: no such session, or no such event in it
  130  interrupted (Ctrl-C); a running turn is recorded as interrupted
  141  whoever read the output stopped early (as in "| head"); nothing more is written
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import sys
import warnings
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import msgspec
from eventsourcing.persistence import PersistenceError

from agentjournal.application import views
from agentjournal.application.errors import (
    AgentJournalError,
    SessionNotFound,
    StoreError,
    VersionNotFound,
    parse_session_id,
)
from agentjournal.application.ports import ComputeError, ModelError, ModelSetupError, TextDelta
from agentjournal.application.service import AuditEntry, SessionService
from agentjournal.application.tracing import SessionTrace, session_trace
from agentjournal.application.turns import ComputeProgress, ToolCallUpdate, TurnOutcome
from agentjournal.domain import (
    AssistantMessage,
    Session,
    Status,
    ToolResult,
    UserMessage,
)
from agentjournal.infrastructure.cli import worker_keys

if TYPE_CHECKING:
    from rich.console import Console
    from rich.live import Live

    from agentjournal.application.api import ManagedAgent
    from agentjournal.application.audit import Verification

DEMO_PROMPTS = (
    "Remember: my favorite color is blue.",
    "Have a look around the work folder:\n$ echo 'hello from the sandbox' > greeting.txt && ls -l",
    "What is my favorite color?",
)

OK, FAILURE, USAGE, NOT_FOUND, INTERRUPTED, BROKEN_PIPE = 0, 1, 2, 3, 130, 141

COMPUTES = {
    "host": "this host, confined (bubblewrap: the work folder only, no other process, no secret)",
    "host-unconfined": "this host, UNCONFINED (as the engine's own user: its files, processes and network)",
    "docker": "the Docker sandbox",
}
"""What ``show`` says of each compute a session's tools may run on."""
EPILOG = "Every reading command" + (__doc__ or "").partition("Every reading command")[2]
"""The end of the docstring above, shown by --help (python -OO drops docstrings)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit status (see the table above)."""
    try:
        status = _dispatch(argv)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return status
    except BrokenPipeError:
        # Quiet, as cat is under "| head". Python flushes stdout once more at exit;
        # pointing it at /dev/null keeps that flush from complaining.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return BROKEN_PIPE


def _show_warning(message: Warning | str, *_: object, **__: object) -> None:
    """Warnings as one line of this command's own, without Python's file and line."""
    print(f"agentjournal: warning: {message}", file=sys.stderr)


def _dispatch(argv: Sequence[str] | None) -> int:
    warnings.showwarning = _show_warning
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return USAGE
    try:
        return int(args.handler(args) or OK)
    except (AgentJournalError, PersistenceError) as e:
        message, status = _explain(e)
        print(f"agentjournal: {message}", file=sys.stderr)
        return status
    except KeyboardInterrupt:
        print("\nagentjournal: interrupted; a running turn is recorded as interrupted", file=sys.stderr)
        return INTERRUPTED


def _explain(error: Exception) -> tuple[str, int]:
    """What to tell the user about an error, and the exit status it stands for."""
    if isinstance(error, ModelSetupError):
        return f"the model is not set up: {error}", FAILURE
    if isinstance(error, ModelError):
        return f"the model call failed: {error}", FAILURE
    if isinstance(error, PersistenceError):
        return f"the session store failed ({type(error).__name__}): {error}", FAILURE
    if isinstance(error, (StoreError, ComputeError)):
        return f"error: {error}", FAILURE
    if isinstance(error, (SessionNotFound, VersionNotFound)):
        return f"error: {error}", NOT_FOUND
    return f"error: {error}", USAGE


def _text(value: str) -> str:
    """An argument that is recorded as text. Bytes that are not UTF-8 reach Python as
    lone surrogates (PEP 383), which no store or model takes: refuse them at once."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise argparse.ArgumentTypeError(
            f"not UTF-8 text (an invalid byte at character {e.start + 1}); give text in UTF-8"
        ) from None
    return value


def _title(value: str) -> str:
    title = _text(value).strip()
    if not title:
        raise argparse.ArgumentTypeError("a title needs some text")
    return title


def _score(value: str) -> float:
    """A score: any finite number."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"{value!r} is not a finite number")
    return number


def _count(value: str) -> int:
    """How many of something: a whole number, 0 or more."""
    if not (value.isascii() and value.isdigit()):
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number (0, 1, 2, ...)")
    return int(value)


def _positive(value: str) -> int:
    number = _count(value)
    if number == 0:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return number


class _Version(argparse.Action):
    """``--version``, as argparse's own but reading the version only when it is asked
    for: the installed distribution's metadata costs more to import than a command."""

    def __init__(
        self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, help: str | None = None
    ) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        import agentjournal

        sys.stdout.write(f"{parser.prog} {agentjournal.__version__}\n")
        parser.exit()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agentjournal",
        description="Event-sourced LLM agent sessions: run, inspect, replay and fork them.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_Version, help="show the version and exit")
    parser.add_argument(
        "--store",
        help="SQLite file of sessions (default: $AGENTJOURNAL_HOME/sessions.db, "
        "or eventsourcing's PERSISTENCE_MODULE settings)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run a prompt in a new or existing session, streaming the reply")
    run.add_argument("prompt", type=_text)
    run.add_argument("--session", help="continue this session (its id, or the id's first characters)")
    run.add_argument(
        "--model",
        type=_text,
        default=os.environ.get("AGENTJOURNAL_MODEL", "gpt-4o"),
        help="any litellm model name (default: $AGENTJOURNAL_MODEL or gpt-4o)",
    )
    run.add_argument("--api-base", default=os.environ.get("AGENTJOURNAL_API_BASE"))
    run.add_argument(
        "--api-key-env", metavar="VAR", help="read the API key from this environment variable (never logged)"
    )
    run.add_argument("--system", type=_text, help="system prompt")
    run.add_argument("--name", type=_text, default="Agent")
    run.add_argument("--title", type=_title, help="the session's title (with --session: its new title)")
    run.add_argument(
        "--compute",
        choices=("host", "docker", "host-unconfined"),
        help="where a new session's tools run (default: host, confined by bubblewrap; host-unconfined "
        "runs them as your own user, unconfined: trusted development only); a continued session keeps its own",
    )
    run.add_argument("--working-dir", type=_text, default="")
    run.add_argument("--max-turns", type=_positive, help="model calls per prompt (default: 25)")
    run.add_argument(
        "--pip",
        type=_text,
        action="append",
        default=[],
        metavar="PACKAGE",
        help="install a pip package in the sandbox (repeatable)",
    )
    run.add_argument("--host-packages-ok", action="store_true")
    run.add_argument("--json", action="store_true", help="print only the turn's outcome, as JSON")
    run.set_defaults(handler=_run)

    demo = sub.add_parser("demo", help="an agent session end to end against the built-in scripted model")
    demo.set_defaults(handler=_demo)

    ls = sub.add_parser("list", help="list sessions, most recent first")
    ls.add_argument("--status", choices=[s.value for s in Status])
    ls.add_argument("--limit", type=_positive, default=50, help="how many to list (default: 50)")
    ls.add_argument("--offset", type=_count, default=0, help="skip this many first: the next page")
    ls.add_argument("--all", action="store_true", help="list every session, however many")
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    ls.set_defaults(handler=_list)

    show = sub.add_parser("show", help="a session's summary and conversation")
    show.add_argument("session")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=_show)

    log = sub.add_parser("log", help="a session's audit log: every event, in order")
    log.add_argument("session")
    log.add_argument("--type", action="append", default=[], help="only events of this type (repeatable)")
    log.add_argument("--after", type=int, help="only events after this version")
    log.add_argument("--until", type=int, help="only events up to this version")
    log.add_argument("--json", action="store_true", help="JSON Lines, one event per line")
    log.set_defaults(handler=_log)

    state = sub.add_parser("state", help="a session's state as of one event (replay)")
    state.add_argument("session")
    state.add_argument("--at", type=int, help="event version (default: the latest)")
    state.add_argument("--json", action="store_true")
    state.set_defaults(handler=_state)

    files = sub.add_parser("files", help="list a session's work folder as of an event, or print one file")
    files.add_argument("session")
    files.add_argument("path", nargs="?", help="a file to print, or a folder to list (default: all)")
    files.add_argument("--at", type=int, help="event version (default: the latest)")
    files.set_defaults(handler=_files)

    restore = sub.add_parser(
        "restore", help="roll a session's work folder back to its files as of an event, recorded as an event"
    )
    restore.add_argument("session")
    restore.add_argument("--at", type=int, required=True, help="the event whose files to bring back")
    restore.set_defaults(handler=_restore)

    fork = sub.add_parser("fork", help="start a new session sharing a session's history up to an event")
    fork.add_argument("session")
    fork.add_argument("--at", type=int, help="event version (default: the latest)")
    fork.add_argument("--json", action="store_true", help="print the new session, not only its id")
    fork.set_defaults(handler=_fork)

    title = sub.add_parser("title", help="give a session a new title")
    title.add_argument("session")
    title.add_argument("title", type=_title)
    title.set_defaults(handler=_set_title)

    interrupt = sub.add_parser("interrupt", help="record a running turn as interrupted")
    interrupt.add_argument("session")
    interrupt.set_defaults(handler=_interrupt)

    terminate = sub.add_parser("terminate", help="close a session for good")
    terminate.add_argument("session")
    terminate.add_argument("--reason", type=_text, default="terminated from the command line")
    terminate.set_defaults(handler=_terminate)

    verify = sub.add_parser("verify", help="check the hash chain of one session, or of the whole store")
    verify.add_argument("session", nargs="?")
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(handler=_verify)

    annotate = sub.add_parser(
        "annotate", help="give one event of a session a note, a score or both (kept in a log of their own)"
    )
    annotate.add_argument("session")
    annotate.add_argument(
        "event", type=_positive, help="the event's version (as log and timeline number them)"
    )
    annotate.add_argument("--note", type=_text, default="", help="what to say about the event")
    annotate.add_argument(
        "--score", type=_score, help="a number on a scale of your choosing (0 to 1, 1 to 5, ...)"
    )
    annotate.add_argument("--json", action="store_true", help="print the annotation, not only its id")
    annotate.set_defaults(handler=_annotate)

    notes = sub.add_parser("annotations", help="a session's annotations, and whether their log verifies")
    notes.add_argument("session")
    notes.add_argument("--json", action="store_true", help="JSON Lines, one annotation per line")
    notes.set_defaults(handler=_annotations)

    dataset = sub.add_parser(
        "dataset", help="write annotated turns as JSON Lines for evaluation tools (one line per annotation)"
    )
    picked = dataset.add_mutually_exclusive_group(required=True)
    picked.add_argument("--session", action="append", help="this session's annotations (repeatable)")
    picked.add_argument("--all", action="store_true", help="the annotations of every session of the store")
    dataset.add_argument("-o", "--output", help="file to write (default: stdout)")
    dataset.set_defaults(handler=_dataset)

    export = sub.add_parser(
        "export", help="write a session's log and files as JSON Lines (to stdout or a file)"
    )
    export.add_argument("session")
    export.add_argument("-o", "--output", help="file to write (default: stdout)")
    export.set_defaults(handler=_export)

    load = sub.add_parser("import", help="store a session exported with 'export' (from a file or stdin)")
    load.add_argument("file", nargs="?", default="-")
    load.set_defaults(handler=_import)

    timeline = sub.add_parser(
        "timeline", help="a session told in order: who said and ran what, usage per turn"
    )
    timeline.add_argument("session")
    timeline.add_argument("--json", action="store_true", help="JSON Lines, one entry per line")
    timeline.set_defaults(handler=_timeline)

    otel = sub.add_parser(
        "otel", help="send sessions to an OpenTelemetry collector as GenAI spans (needs the otel extra)"
    )
    chosen = otel.add_mutually_exclusive_group(required=True)
    chosen.add_argument("session", nargs="?")
    chosen.add_argument("--all", action="store_true", help="every session of the store")
    otel.add_argument(
        "--endpoint",
        default="",
        help="the collector's OTLP/HTTP address, e.g. http://127.0.0.1:4318 "
        "(default: the OTEL_EXPORTER_OTLP_* settings, else http://localhost:4318)",
    )
    otel.set_defaults(handler=_otel)

    compare = sub.add_parser("diff", help="where two sessions (a fork and its parent, say) part, and how")
    compare.add_argument("left")
    compare.add_argument("right", help="another session, or the same one with --left-at / --right-at")
    compare.add_argument("--left-at", type=int, help="compare the left session as of this event")
    compare.add_argument("--right-at", type=int, help="compare the right session as of this event")
    compare.add_argument("--json", action="store_true")
    compare.set_defaults(handler=_diff)

    keygen = sub.add_parser("keygen", help="print a new key for encryption at rest (CIPHER_KEY)")
    keygen.set_defaults(handler=_keygen)

    cleanup = sub.add_parser(
        "cleanup", help="remove the sandbox containers of this store's sessions (listed, and asked first)"
    )
    cleanup.add_argument("--session", help="only this session's sandbox")
    cleanup.add_argument("--yes", action="store_true", help="remove without asking")
    cleanup.set_defaults(handler=_cleanup)

    serve = sub.add_parser(
        "serve", help="serve the Claude Managed Agents API (agents, environments, sessions, events)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=_count, default=8080, help="port (default: 8080; 0 picks a free one)")
    serve.add_argument(
        "--no-auth",
        action="store_true",
        help="serve without API keys (only on a loopback address); otherwise $AGENTJOURNAL_API_KEYS is required",
    )
    serve.add_argument(
        "--api-base",
        default=os.environ.get("AGENTJOURNAL_API_BASE"),
        help="where models are served (litellm's api_base; default: $AGENTJOURNAL_API_BASE or the provider's own)",
    )
    serve.add_argument(
        "--api-key-env",
        metavar="VAR",
        help="read the model provider's API key from this environment variable",
    )
    serve.add_argument(
        "--model-provider",
        default=os.environ.get("AGENTJOURNAL_MODEL_PROVIDER", ""),
        help="litellm provider prefix for agents' model names without one, e.g. 'openai' for any "
        "OpenAI-compatible server (default: $AGENTJOURNAL_MODEL_PROVIDER, or litellm's own routing)",
    )
    serve.add_argument(
        "--allow-private-mcp",
        action="store_true",
        help="let agents' MCP servers be on loopback, link-local or private addresses (by default "
        "refused: the server would reach its own network on an agent's behalf)",
    )
    serve.add_argument(
        "--answer-grace",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="how long a turn waits for a custom tool's result or a confirmation before it pauses "
        "(requires_action); answers within it continue the turn without a pause (default: 2)",
    )
    serve.add_argument(
        "--max-upload-bytes",
        type=int,
        default=None,
        metavar="BYTES",
        help="the largest file POST /v1/files accepts (default: 500 MB, as the cloud)",
    )
    serve.add_argument(
        "--client-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long a client may take to send a request's headers, and then its body, before "
        "its connection is closed (default: 30)",
    )
    serve.add_argument(
        "--turn-workers",
        type=_positive,
        default=16,
        metavar="N",
        help="turns run at once; more wait in a queue (default: 16)",
    )
    serve.add_argument(
        "--shutdown-grace",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="on SIGTERM or Ctrl-C, how long running and queued turns may take to end before they "
        "are recorded as interrupted (default: 5)",
    )
    serve.add_argument(
        "--otel-endpoint",
        default="",
        metavar="URL",
        help="send each turn, as it ends, to this OpenTelemetry collector (OTLP/HTTP, e.g. "
        "http://127.0.0.1:4318; needs the otel extra)",
    )
    serve.add_argument(
        "--allow-unconfined-host",
        action="store_true",
        help="DANGEROUS, for trusted development only: run the tools of sessions without packages "
        "UNCONFINED on this host, as the server's own user (its files, processes and network), and "
        "the tools of sessions that recorded it; without it every tool runs confined (bubblewrap) "
        "or in Docker, or the session is refused",
    )
    serve.set_defaults(handler=_serve)
    worker_keys.add_parser(sub)
    return parser


def _serve(args: argparse.Namespace) -> int:
    from agentjournal.application.api import ManagedConfig
    from agentjournal.infrastructure.server.app import ServerSettings
    from agentjournal.infrastructure.server.auth import KEYS_ENV, parse_keys
    from agentjournal.infrastructure.server.serve import serve

    api_key = os.environ.get(args.api_key_env) if args.api_key_env else None
    if args.api_key_env and not api_key:
        raise AgentJournalError(f"environment variable {args.api_key_env} is not set")
    if args.otel_endpoint and importlib.util.find_spec("opentelemetry.sdk") is None:
        raise AgentJournalError("--otel-endpoint needs the otel extra: pip install 'agentjournal[otel]'")
    if args.model_provider:
        # Agents name their models; the route to their provider is checked now, not at a turn.
        from agentjournal.infrastructure.models.litellm_model import check_model_setup

        check_model_setup(
            f"{args.model_provider}/any-model",
            args.api_base,
            api_key,
            who=f"--model-provider {args.model_provider}",
        )
    elif args.api_base:
        from agentjournal.infrastructure.models.litellm_model import check_answers

        check_answers("the models' server", args.api_base)
    settings = ServerSettings(
        api_keys=parse_keys(os.environ.get(KEYS_ENV)),
        allow_no_auth=args.no_auth,
        store=args.store,
        model=ManagedConfig(api_base=args.api_base, api_key=api_key),
        model_provider=args.model_provider,
        answer_grace=args.answer_grace,
        allow_private_mcp=args.allow_private_mcp,
        client_timeout=args.client_timeout,
        **({"max_upload_bytes": args.max_upload_bytes} if args.max_upload_bytes else {}),
        turn_workers=args.turn_workers,
        shutdown_grace=args.shutdown_grace,
        otel_endpoint=args.otel_endpoint,
        allow_unconfined_host=args.allow_unconfined_host,
    )
    if args.allow_unconfined_host:
        print(
            "agentjournal: --allow-unconfined-host: tools run UNCONFINED, as this server's own user",
            file=sys.stderr,
            flush=True,
        )
    try:
        serve(settings, args.host, args.port)
    except (ValueError, OSError) as e:
        raise AgentJournalError(f"cannot serve: {e}") from None
    return OK


def _service(args: argparse.Namespace, create: bool = False) -> SessionService:
    """The store ``--store`` names (or the default one). Only a command that records new
    sessions (``create``: run, demo, import) makes a new SQLite file; for any other, a path
    with nothing there is a mistyped path, refused rather than answered from an empty store."""
    from agentjournal.application.store import open_store

    if args.store and not create and not os.path.exists(os.path.expanduser(args.store)):
        raise AgentJournalError(
            f"no session store at {args.store}: check the path (only run, demo and import create a store)"
        )
    return open_store(args.store)


# -- running ------------------------------------------------------------------------


def _run(args: argparse.Namespace) -> int:
    from agentjournal.application.api import ManagedAgent, ManagedConfig

    api_key = os.environ.get(args.api_key_env) if args.api_key_env else None
    if args.api_key_env and not api_key:
        raise AgentJournalError(f"environment variable {args.api_key_env} is not set")
    fields: dict[str, Any] = {
        "model": args.model, "name": args.name,
        "working_dir": args.working_dir, "host_packages_ok": args.host_packages_ok,
        "api_base": args.api_base, "api_key": api_key, "session_title": args.title,
    }  # fmt: skip
    if args.system:
        fields["system"] = args.system
    if args.max_turns:
        fields["max_turns"] = args.max_turns
    if args.pip:
        fields["packages"] = {"pip": args.pip}
    agent = ManagedAgent(
        config=ManagedConfig(**fields), compute=args.compute, store=_service(args, create=True)
    )
    model = args.model
    if args.session:
        session_id = agent.service.find_session(args.session)
        agent.resume_session(session_id)
        model = agent.service.get_session(session_id).config.model
        if args.title:
            agent.service.set_title(session_id, args.title)
    _check_model(model, args.api_base, api_key)
    try:
        outcome = _stream_turn(agent, args.prompt, show_text=not args.json, status=_StatusLine.on_stderr())
    finally:
        # Whatever happened, the session that recorded it (a failed turn too) is named.
        if agent.session_id:
            print(f"session {agent.session_id}", file=sys.stderr)
    if args.json:
        _print_json(views.turn_outcome(outcome))
    return OK


def _check_model(model: str, api_base: str | None, api_key: str | None) -> None:
    """Refuse, before any model call, a model that cannot be called as set up (see
    :func:`~agentjournal.infrastructure.models.litellm_model.check_model_setup`)."""
    from agentjournal.infrastructure.models.litellm_model import check_model_setup

    check_model_setup(model, api_base, api_key)


def _stream_turn(
    agent: ManagedAgent, prompt: str, *, show_text: bool = True, status: _StatusLine | None = None
) -> TurnOutcome:
    """Run one turn, its text to stdout as it streams and its tool calls to stderr;
    returns how it ended. ``status`` says what the turn waits for in between."""
    status = status or _StatusLine()
    outcome = None
    status.show("working\u2026")
    try:
        for update in agent.updates(prompt):
            status.hide()
            if isinstance(update, ComputeProgress):
                status.show(f"{update.step}\u2026")
            elif isinstance(update, TextDelta) and show_text:
                sys.stdout.write(update.text)
                sys.stdout.flush()
            elif isinstance(update, ToolCallUpdate) and update.result is None:
                print(f"\n  -> {update.call.name} {update.call.arguments}", file=sys.stderr)
                status.show(f"running {update.call.name}\u2026")
            elif isinstance(update, ToolCallUpdate) and update.result is not None:
                r = update.result
                print(f"  <- exit {r.exit_code}, {r.duration_ms:.0f} ms", file=sys.stderr)
                status.show("waiting for the model\u2026")
            elif isinstance(update, TurnOutcome):
                outcome = update
                if show_text:
                    print(flush=True)
    finally:
        status.hide()
    assert outcome is not None, "a turn always ends with its outcome"
    return outcome


class _StatusLine:
    """A spinner and a word on what a turn is waiting for (preparing its sandbox and
    packages, a tool, the model), drawn on stderr when that is a terminal and erased
    before anything else is printed. Elsewhere it does nothing."""

    def __init__(self, console: Console | None = None) -> None:
        self._console = console
        self._live: Live | None = None

    @classmethod
    def on_stderr(cls) -> _StatusLine:
        if not sys.stderr.isatty():
            return cls()
        from rich.console import Console

        console = Console(stderr=True)
        return cls(console if console.is_terminal and not console.is_dumb_terminal else None)

    def show(self, text: str) -> None:
        if self._console is None:
            return
        from rich.live import Live
        from rich.spinner import Spinner

        self.hide()
        # No redirection: stdout may be a pipe, and its text must not pass through stderr.
        self._live = Live(
            Spinner("dots", text),
            console=self._console,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._live.start(refresh=True)

    def hide(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None


def _demo(args: argparse.Namespace) -> int:
    from agentjournal.application.api import ManagedAgent, ManagedConfig
    from agentjournal.infrastructure.models.scripted import ScriptedModelServer

    print("[demo] model: the built-in SCRIPTED model server (rule-based replies, not an LLM).")
    print("[demo] to use a real model: agentjournal run --model MODEL --api-key-env VAR 'prompt'\n")
    with ScriptedModelServer() as server:
        config = ManagedConfig(
            model="openai/scripted-demo", api_base=server.base_url, api_key="scripted-demo-key",
            name="demo",
        )  # fmt: skip
        agent = ManagedAgent(config=config, store=_service(args, create=True))
        for prompt in DEMO_PROMPTS:
            print(f"you> {prompt}")
            sys.stdout.write("agent> ")
            _stream_turn(agent, prompt)
            print()
        info = agent.retrieve_session()
        print(f"session {info['id']}: status {info['status']}, title {info['title']!r}")
        print(
            f"usage: {info['usage']['input_tokens']} input / {info['usage']['output_tokens']} output tokens"
        )
        session_id = parse_session_id(info["id"])
        entries = agent.service.audit_log(session_id)
        print(f"\nits audit log has {len(entries)} events:")
        _print_log(entries)
        fork = agent.fork(at_version=entries[-1].version)
        print(f"\nforked as {fork.session_id}; the fork remembers: ", end="")
        print(fork.run("What is my favorite color?"))
        print(f"\ntry: agentjournal timeline {session_id}")
        print(f"     agentjournal state {session_id} --at 5")
        print(f"     agentjournal verify {session_id}")
    return 0


# -- reading ------------------------------------------------------------------------


def _list(args: argparse.Namespace) -> int:
    service = _service(args)
    status = Status(args.status) if args.status else None
    if args.all:
        # One query: pages read one after another could miss a session that moved up meanwhile.
        summaries = service.list_summaries(status, limit=sys.maxsize)
    else:
        summaries = service.list_summaries(status, args.limit + 1, args.offset)
        if len(summaries) > args.limit:
            summaries = summaries[: args.limit]
            print(
                f"agentjournal: more sessions than these {args.limit}: list them with --all, "
                f"or the next page with --offset {args.offset + args.limit}",
                file=sys.stderr,
            )
    if args.json:
        _print_json_lines(views.session_listing(s) for s in summaries)
        return OK
    rows = [
        (str(s.id), s.status.value, s.title, f"{s.usage.input_tokens}/{s.usage.output_tokens}",
         views.format_cost(s.cost), f"{s.model_ms / 1000:.1f}", str(s.message_count),
         f"{s.parent_id}@{s.parent_version}" if s.parent_id else "", s.updated_at.strftime("%Y-%m-%d %H:%M:%S"))
        for s in summaries
    ]  # fmt: skip
    _table(
        ("id", "status", "title", "tokens in/out", "cost", "model s", "msgs", "forked from", "updated"), rows
    )
    return OK


def _show(args: argparse.Namespace) -> int:
    service = _service(args)
    summary = service.summary(service.find_session(args.session))
    session = service.get_session(summary.id)
    trace = session_trace(service.events.get(summary.id))
    if args.json:
        _print_json(views.session_detail(summary, session) | {"trace": views.session_trace(trace)})
        return OK
    print(f"session {summary.id}  [{summary.status.value}]  {summary.title!r}")
    print(f"  model {summary.model}, {summary.turn_count} turns, version {summary.version}")
    print(f"  tools run on {COMPUTES.get(session.config.compute, session.config.compute)}")
    print(f"  tokens: {summary.usage.input_tokens} in, {summary.usage.output_tokens} out")
    _print_costs(trace)
    if summary.parent_id:
        print(f"  forked from {summary.parent_id} at event {summary.parent_version}")
    if summary.last_error:
        print(f"  last error: {summary.last_error}")
    print()
    _print_messages(session)
    return OK


def _print_costs(trace: SessionTrace) -> None:
    """Cost and time per turn, and how each tool fared."""
    calls = trace.model_calls
    print(
        f"  cost: {views.format_cost(trace.cost)}; {len(calls)} model calls, {trace.model_ms:.0f} ms in all"
    )
    for turn in trace.turns:
        took = f"{turn.duration_ms:.0f} ms" if turn.duration_ms is not None else "running"
        print(f"    turn {turn.turn} ({turn.outcome}): {took}, {len(turn.model_calls)} model calls "
              f"{turn.model_ms:.0f} ms, {len(turn.tool_calls)} tool calls, cost {views.format_cost(turn.cost)}")  # fmt: skip
    for tool in trace.tool_stats():
        print(f"  tool {tool.name}: {tool.calls} calls, {tool.failures} failed, "
              f"median {tool.median_ms:.0f} ms, p95 {tool.p95_ms:.0f} ms")  # fmt: skip


def _log(args: argparse.Namespace) -> int:
    service = _service(args)
    entries = service.audit_log(service.find_session(args.session), args.type, args.after, args.until)
    if args.json:
        _print_json_lines(views.audit_entry(e) for e in entries)
        return OK
    _print_log(entries)
    return OK


def _state(args: argparse.Namespace) -> int:
    service = _service(args)
    session = service.get_session(service.find_session(args.session), args.at)
    if args.json:
        _print_json(views.session_state(session))
        return OK
    print(f"session {session.id} as of event {session.version}: status {session.status}, "
          f"title {session.title!r}, {len(session.messages)} messages, "
          f"tokens {session.usage.input_tokens} in / {session.usage.output_tokens} out")  # fmt: skip
    print()
    _print_messages(session)
    return OK


def _files(args: argparse.Namespace) -> int:
    """A file's contents, as they were, on stdout; or the files (mode, size, hash, path)
    under a folder, those over the size cap marked as kept by hash only."""
    service = _service(args)
    files = service.files_at(service.find_session(args.session), args.at)
    if args.path and args.path.strip("/") in files:
        sys.stdout.buffer.write(files.read(args.path))
        sys.stdout.flush()
        return OK
    paths = files.under(args.path or "")
    if args.path and not paths:
        print(f"no file or folder {args.path!r} as of event {files.version}", file=sys.stderr)
        return NOT_FOUND
    for path in paths:
        state = files[path]
        kept = "" if state.stored else "  (hash and size only: over the size cap)"
        print(f"{state.mode:04o} {state.size:>10} {state.hash[:12]}  {path}{kept}")
    return OK


def _restore(args: argparse.Namespace) -> int:
    """Restore in the session's own sandbox, under its recorded config (its compute, its
    working folder); prints the version that records it."""
    from agentjournal.application.api import ManagedAgent, ManagedConfig

    service = _service(args)
    session_id = service.find_session(args.session)
    agent = ManagedAgent(
        config=ManagedConfig(model=service.get_session(session_id).config.model), store=service
    )
    agent.resume_session(session_id)
    print(agent.restore_files(args.at))
    return OK


def _fork(args: argparse.Namespace) -> int:
    service = _service(args)
    fork_id = service.fork(service.find_session(args.session), args.at)
    if args.json:
        _print_json(views.session_listing(service.summary(fork_id)))
    else:
        print(fork_id)
    return OK


def _set_title(args: argparse.Namespace) -> int:
    service = _service(args)
    service.set_title(service.find_session(args.session), args.title)
    return OK


def _interrupt(args: argparse.Namespace) -> int:
    service = _service(args)
    service.interrupt(service.find_session(args.session))
    return OK


def _terminate(args: argparse.Namespace) -> int:
    service = _service(args)
    service.terminate(service.find_session(args.session), args.reason)
    return OK


def _verify(args: argparse.Namespace) -> int:
    from agentjournal.application import audit

    service = _service(args)
    results = (
        [audit.verify(service, service.find_session(args.session))]
        if args.session
        else audit.verify_store(service)
    )
    labels = [""] * len(results)
    if args.session:
        from agentjournal.application.annotating import verify_annotations

        notes = verify_annotations(service, results[0].session_id)
        if notes is not None:
            results.append(notes)
            labels.append(f"  (the annotations of {results[0].session_id})")
    if args.json:
        _print_json_lines(views.verification(r) for r in results)
    else:
        for result, label in zip(results, labels, strict=True):
            _print_verification(result, label)
    return OK if all(r.ok for r in results) else FAILURE


def _annotate(args: argparse.Namespace) -> int:
    from agentjournal.application import annotating

    service = _service(args)
    record = annotating.annotate(
        service, service.find_session(args.session), args.event, args.note, args.score
    )
    if args.json:
        _print_json(annotating.annotation_view(record))
    else:
        print(record.annotation.id.hex)
    return OK


def _annotations(args: argparse.Namespace) -> int:
    from agentjournal.application import annotating

    service = _service(args)
    session_id = service.find_session(args.session)
    records = annotating.annotations_of(service, session_id)
    if args.json:
        _print_json_lines(annotating.annotation_view(r) for r in records)
        return OK
    rows = [
        (r.annotation.id.hex[:12], str(r.annotation.event_version), r.annotation.event_type,
         "" if r.annotation.score is None else f"{r.annotation.score:g}", r.annotation.note,
         r.created_at.strftime("%Y-%m-%d %H:%M:%S"))
        for r in records
    ]  # fmt: skip
    _table(("id", "event", "type", "score", "note", "made"), rows)
    checked = annotating.verify_annotations(service, session_id)
    if checked is not None and not checked.ok:
        assert checked.broken is not None
        print(f"agentjournal: the annotation log is BROKEN at its event {checked.broken.version}: "
              f"{checked.broken.problem}", file=sys.stderr)  # fmt: skip
        return FAILURE
    return OK


def _dataset(args: argparse.Namespace) -> int:
    from agentjournal.application import annotating

    service = _service(args)
    if args.all:
        sessions = annotating.annotated_sessions(service)
    else:
        sessions = list(dict.fromkeys(service.find_session(s) for s in args.session))
    lines = (msgspec.json.encode(line) + b"\n" for line in annotating.dataset(service, sessions))
    written = _write_lines(lines, args.output)
    print(f"{written} annotation(s) from {len(sessions)} session(s)", file=sys.stderr)
    return OK


def _write_lines(lines: Iterable[bytes], output: str | None) -> int:
    """Write ``lines`` to the file ``output`` names, or to stdout; how many were written."""
    written = 0
    if output is None:
        sys.stdout.flush()
        for line in lines:
            sys.stdout.buffer.write(line)
            written += 1
        return written
    try:
        with open(output, "wb") as out:
            for line in lines:
                out.write(line)
                written += 1
    except OSError as e:
        raise AgentJournalError(f"cannot write {output}: {e.strerror}") from None
    return written


def _export(args: argparse.Namespace) -> int:
    from agentjournal.application import audit

    service = _service(args)
    _write_lines(audit.export_session(service, service.find_session(args.session)), args.output)
    return OK


def _import(args: argparse.Namespace) -> int:
    from agentjournal.application import audit

    if args.file == "-":
        session_id = audit.import_session(_service(args, create=True), sys.stdin.buffer)
    else:
        try:
            with open(args.file, "rb") as source:
                session_id = audit.import_session(_service(args, create=True), source)
        except OSError as e:
            raise AgentJournalError(f"cannot read {args.file}: {e.strerror}") from None
    print(session_id)
    return OK


def _timeline(args: argparse.Namespace) -> int:
    from agentjournal.application import audit

    service = _service(args)
    entries = audit.timeline(service, service.find_session(args.session))
    if args.json:
        _print_json_lines(views.timeline_entry(e) for e in entries)
        return OK
    for entry in entries:
        text = entry.text.replace("\n", "\n" + " " * 27)
        print(f"{entry.version:>5} {entry.timestamp:%H:%M:%S}  {entry.actor:<9}  {text}")
    return OK


def _otel(args: argparse.Namespace) -> int:
    try:
        from agentjournal.infrastructure.telemetry import otel
    except ImportError as e:
        print(f"agentjournal: OpenTelemetry export needs the otel extra "
              f"(pip install 'agentjournal[otel]'): {e}", file=sys.stderr)  # fmt: skip
        return USAGE
    service = _service(args)
    if args.all:
        summaries = service.list_summaries(limit=sys.maxsize)
    else:
        summaries = [service.summary(service.find_session(args.session))]
    traces = ((session_trace(service.events.get(s.id)), s.title, s.name) for s in summaries)
    try:
        sent = otel.export(traces, args.endpoint)
    except otel.ExportFailed as e:
        print(f"agentjournal: {e}", file=sys.stderr)
        return FAILURE
    print(f"sent {sent} spans of {len(summaries)} sessions")
    return OK


def _diff(args: argparse.Namespace) -> int:
    from agentjournal.application import audit

    service = _service(args)
    left, right = service.find_session(args.left), service.find_session(args.right)
    result = audit.diff(service, left, right, args.left_at, args.right_at)
    if args.json:
        _print_json(views.session_diff(result))
        return OK
    print(result.relation)
    print(f"{result.shared_messages} messages in common; then:")
    for side, messages in (("<", result.left_only), (">", result.right_only)):
        for message in messages:
            print(f"{side} {audit.describe(message)}")
    if result.files:
        print(f"{len(result.files)} files differ:")
    for change in result.files:
        print(f"{change.change:>8} {change.path}")
        if change.change == "changed":
            lines = audit.text_diff(service, change)
            text = "".join(lines) if lines is not None else "(binary, or kept by hash only)"
            print(text if text.endswith("\n") or not text else text + "\n", end="")
    return OK


def _keygen(args: argparse.Namespace) -> int:
    from eventsourcing.cipher import AESCipher

    print(AESCipher.create_key(num_bytes=32))
    return 0


def _cleanup(args: argparse.Namespace) -> int:
    """Remove the sandbox containers of this store's sessions (or one session's), listed
    first and, unless ``--yes``, only once the user says so. Containers of sessions another
    store holds, and the sandbox of a session running a turn, are left alone."""
    from agentjournal.infrastructure.compute.docker_sandbox import SESSION_LABEL, remove_sandbox, sandboxes

    service = _service(args)
    only = service.find_session(args.session) if args.session else None
    chosen, others, busy = [], 0, 0
    for container in sandboxes(session_id=only):
        session = _session_of(service, container.labels.get(SESSION_LABEL, ""))
        if session is None:
            others += 1
        elif session.status == Status.RUNNING and not service.is_abandoned(session):
            busy += 1
        else:
            chosen.append((container, session))
    if others:
        print(f"left {others} sandbox container(s) of sessions this store does not hold alone")
    if busy:
        print(f"left {busy} sandbox container(s) of sessions running a turn alone")
    if not chosen:
        print("no sandbox container of this store's sessions to remove")
        return OK
    for container, session in chosen:
        print(
            f"{container.name}  session {session.id}  ({session.status.value}, container {container.status})"
        )
    if not args.yes and not _confirmed(f"remove these {len(chosen)} sandbox container(s)?"):
        print("nothing removed (answer y, or pass --yes, to remove them)", file=sys.stderr)
        return OK
    for container, _ in chosen:
        remove_sandbox(container)
    print(f"removed {len(chosen)} sandbox container(s)")
    return OK


def _session_of(service: SessionService, label: str) -> Session | None:
    """The session of this store a sandbox's session label names, if any."""
    try:
        return service.get_session(parse_session_id(label))
    except (AgentJournalError, ValueError):
        return None


def _confirmed(question: str) -> bool:
    """The user's yes, asked on a terminal; never a yes where nobody can answer."""
    if not sys.stdin.isatty():
        return False
    try:
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
    except EOFError:
        return False


# -- rendering ----------------------------------------------------------------------


def _print_json(value: object) -> None:
    _print_json_lines([value])


def _print_json_lines(values: Iterable[object]) -> None:
    sys.stdout.flush()  # whatever print() holds goes first
    for value in values:
        sys.stdout.buffer.write(msgspec.json.encode(value) + b"\n")


def _print_log(entries: list[AuditEntry]) -> None:
    rows = [
        (str(e.version), e.timestamp.strftime("%H:%M:%S.%f")[:-3], e.type, _brief(e.payload)) for e in entries
    ]
    _table(("#", "time", "event", "payload"), rows)


def _print_verification(result: Verification, label: str = "") -> None:
    if result.broken is None:
        print(f"ok      {result.session_id}  {result.events} events, head {result.head}{label}")
    else:
        print(
            f"BROKEN  {result.session_id}  at event {result.broken.version}: {result.broken.problem}{label}"
        )


def _brief(payload: dict[str, Any], width: int = 160) -> str:
    """The payload on one line; its chain hashes are left to --json and verify."""
    shown = {k: v for k, v in payload.items() if k not in ("previous_hash", "hash")}
    text = msgspec.json.encode(shown).decode()
    return text if len(text) <= width else text[: width - 1] + "\u2026"


def _print_messages(session: Session) -> None:
    for m in session.messages:
        if isinstance(m, UserMessage):
            print(f"user> {m.content}")
        elif isinstance(m, AssistantMessage):
            print(f"assistant> {m.content}")
            for c in m.tool_calls:
                print(f"  tool call {c.name} {c.arguments}")
        elif isinstance(m, ToolResult):
            flag = " (truncated)" if m.truncated else ""
            print(f"  tool {m.name} -> exit {m.exit_code}, {m.duration_ms:.0f} ms{flag}")
            for line in m.output.splitlines()[:10]:
                print(f"    {line}")


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A table on a terminal; tab-separated lines when piped, for cut and awk."""
    if not sys.stdout.isatty():
        for row in (headers, *rows):
            print("\t".join(cell.replace("\t", " ").replace("\n", " ") for cell in row))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(show_lines=False, header_style="bold")
    for header in headers:
        table.add_column(header, no_wrap=True, overflow="ellipsis")
    for row in rows:
        table.add_row(*row)
    Console(soft_wrap=False).print(table)


if __name__ == "__main__":
    raise SystemExit(main())
