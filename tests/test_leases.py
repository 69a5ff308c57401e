"""Turn leases at the service level, on SQLite and PostgreSQL: granted and released with the
turn's own events, renewed by heartbeats, and an orphaned turn closed by another process
without running anything of it a second time."""

from __future__ import annotations

import threading
import uuid

import msgspec
import pytest

from agentjournal.application import ManagedConfig, SessionService
from agentjournal.application.audit import verify
from agentjournal.application.leases import LEASE_SECONDS_SETTING, turn_lease_name
from agentjournal.application.recovery import Recovery
from agentjournal.application.runtimes import Runtimes
from agentjournal.application.turns import ToolCallUpdate, TurnOutcome
from agentjournal.domain import SessionBusy, SessionConfig, Status, StopReason, ToolResult
from agentjournal.infrastructure.models.scripted import Reply, ScriptedModelServer, ScriptedToolCall
from tests.conftest import wait_until

pytestmark = pytest.mark.timeout(120)


def new_session(service: SessionService, config: ManagedConfig, *tools: str) -> uuid.UUID:
    recorded = SessionConfig(model=config.model, system="", name="t", tools=tools,
                             networking={"type": "unrestricted"}, compute="host")  # fmt: skip
    return service.create_session(recorded)


def lease_of(service: SessionService, session_id: uuid.UUID):  # type: ignore[no-untyped-def]
    return service.leases.find([turn_lease_name(session_id)]).get(turn_lease_name(session_id))


def test_a_turn_holds_its_lease_while_it_runs_and_releases_it_with_its_end(
    service: SessionService, config: ManagedConfig, model_server: ScriptedModelServer
) -> None:
    session_id = new_session(service, config)
    assert lease_of(service, session_id) is None
    model_server.enqueue(Reply(text="Done."))
    started = service.start_turn(session_id, "hello", Runtimes(config))
    lease = lease_of(service, session_id)
    turn_started = [e for e in service.audit_log(session_id) if e.type == "TurnStarted"][-1]
    assert lease.holder == service.heartbeat.holder and lease.token == turn_started.version
    assert lease.expires_at > service.leases.now()
    list(started.updates)
    assert lease_of(service, session_id).expires_at == 0  # released by the transaction of the end
    assert service.orphaned(service.get_session(session_id)) is None


def test_heartbeats_keep_a_turn_longer_than_its_lease_alive(
    store_env: dict[str, str], open_service, config: ManagedConfig, model_server: ScriptedModelServer
) -> None:
    runner = open_service(**{LEASE_SECONDS_SETTING: "0.6"})
    other = open_service(**{LEASE_SECONDS_SETTING: "0.6"})
    session_id = new_session(runner, config)
    model_server.enqueue(Reply(text="a slow answer " * 30, delay=0.1))  # about 3 s, five lease periods
    started = runner.start_turn(session_id, "tell me slowly", Runtimes(config))
    updates = iter(started.updates)
    next(updates)  # the model is streaming
    first = lease_of(runner, session_id)
    wait_until(lambda: lease_of(other, session_id).expires_at > first.expires_at, "a heartbeat")
    assert Recovery(other).sweep() == []
    assert other.orphaned(other.get_session(session_id)) is None
    outcome = [u for u in updates if isinstance(u, TurnOutcome)][-1]
    assert outcome.stop_reason == StopReason.END_TURN


def test_a_turn_whose_lease_runs_out_is_closed_by_another_process(
    store_env: dict[str, str], open_service, config: ManagedConfig, model_server: ScriptedModelServer
) -> None:
    hung = open_service(**{LEASE_SECONDS_SETTING: "0.5"})
    rescuer = open_service(**{LEASE_SECONDS_SETTING: "0.5"})
    session_id = new_session(hung, config)
    model_server.enqueue(Reply(text="never recorded", stall=30))
    started = hung.start_turn(session_id, "hello", Runtimes(config))
    hung.heartbeat.close()  # the runner hangs: its process lives on, its heartbeats stop
    assert Recovery(rescuer).sweep() == []  # not before the lease runs out
    wait_until(lambda: Recovery(rescuer).sweep() == [session_id], "the lease to run out")
    session = rescuer.get_session(session_id)
    assert session.status == Status.IDLE
    last = rescuer.audit_log(session_id)[-1]
    assert last.type == "TurnCompleted" and last.payload["stop_reason"] == "interrupted"
    assert last.payload["detail"] == f"runner lost: {hung.heartbeat.holder} stopped renewing its lease"
    started.updates.close()  # type: ignore[attr-defined]
    assert rescuer.audit_log(session_id)[-1].version == last.version  # the runner adds nothing after


def test_a_runner_that_loses_its_lease_ends_its_tools_and_runs_nothing_again(
    store_env: dict[str, str],
    open_service,
    config: ManagedConfig,
    model_server: ScriptedModelServer,
    tmp_path,
) -> None:
    runner = open_service(**{LEASE_SECONDS_SETTING: "0.6"})
    other = open_service()
    session_id = new_session(runner, config, "execute_command")
    marker = tmp_path / "late"
    model_server.enqueue(
        Reply(tool_calls=[ScriptedToolCall("execute_command", {"command": f"sleep 60; touch {marker}"})]),
        Reply(text="never asked for"),
    )
    ended = threading.Event()
    seen: list[object] = []

    def run() -> None:
        try:
            for update in runner.run_turn(session_id, "sleep", Runtimes(config)):
                seen.append(update)
        except Exception as e:  # noqa: BLE001 - what the turn raised is asserted below
            seen.append(e)
        finally:
            ended.set()

    threading.Thread(target=run, daemon=True).start()
    wait_until(lambda: any(isinstance(u, ToolCallUpdate) and u.result is None for u in seen), "the command")
    other.interrupt(session_id, "interrupted by request")  # records the end: the lease is released
    assert ended.wait(20), "the turn did not stop when its lease was lost"
    assert not marker.exists()
    results = [m for m in other.get_session(session_id).messages if isinstance(m, ToolResult)]
    assert len(results) == 1 and results[0].output.startswith("not run")  # closed once, never run again
    assert len(model_server.requests) == 1


def test_an_interrupt_ends_the_turn_it_names_and_never_the_next(
    service: SessionService, config: ManagedConfig, model_server: ScriptedModelServer
) -> None:
    session_id = new_session(service, config)
    runtimes = Runtimes(config)
    model_server.enqueue(Reply(text="late " * 20, hold=True), Reply(text="second " * 100, delay=0.05))

    def consume(updates) -> list[object]:  # type: ignore[no-untyped-def]
        seen: list[object] = []
        try:
            seen.extend(updates)
        except Exception as e:  # noqa: BLE001 - asserted by the test
            seen.append(e)
        return seen

    first = threading.Thread(target=consume, args=(service.start_turn(session_id, "one", runtimes).updates,))
    first.start()
    model_server.wait_for_requests(1)  # the first turn waits on the model, its reply held
    service.interrupt(session_id)
    second: list[object] = []
    second_thread = threading.Thread(
        target=lambda: second.extend(consume(service.start_turn(session_id, "two", runtimes).updates))
    )
    second_thread.start()
    model_server.wait_for_requests(2)
    model_server.release()
    first.join(30)  # the first turn's model call returned while the second turn runs
    assert not first.is_alive()
    with pytest.raises(SessionBusy):
        service.start_turn(session_id, "three", runtimes)
    second_thread.join(30)
    outcome = [u for u in second if isinstance(u, TurnOutcome)][-1]
    assert outcome.stop_reason == StopReason.END_TURN
    ends = [e.payload["stop_reason"] for e in service.audit_log(session_id) if e.type == "TurnCompleted"]
    assert ends == ["interrupted", "end_turn"]


def test_a_title_or_metadata_set_during_a_turn_does_not_disturb_it(
    service: SessionService, open_service, config: ManagedConfig, model_server: ScriptedModelServer
) -> None:
    other = open_service()
    session_id = new_session(service, config)
    model_server.enqueue(Reply(text="an answer " * 20, delay=0.05))
    started = service.start_turn(session_id, "hello", Runtimes(config))
    updates = iter(started.updates)
    next(updates)
    other.set_title(session_id, "A better title")
    recorded = other.get_session(session_id).config
    other.change_config(session_id, msgspec.structs.replace(recorded, metadata={"team": "blue"}))
    outcome = [u for u in updates if isinstance(u, TurnOutcome)][-1]
    assert outcome.stop_reason == StopReason.END_TURN
    session = service.get_session(session_id)
    assert (session.status, session.title, session.config.metadata) == (
        Status.IDLE,
        "A better title",
        {"team": "blue"},
    )
    assert session.messages[-1].content == "an answer " * 20
    assert verify(service, session_id).ok


def test_two_sessions_never_share_a_compute(config: ManagedConfig, tmp_path) -> None:
    runtimes = Runtimes(config)
    recorded = SessionConfig(model=config.model, system="", name="t", tools=("write_file",),
                             networking={"type": "unrestricted"}, compute="host")  # fmt: skip
    a, b = uuid.uuid4(), uuid.uuid4()
    on_a, on_b = runtimes(recorded, a).compute, runtimes(recorded, b).compute
    on_a.attach(a, None)
    on_b.attach(b, None)  # a turn of b starts while a turn of a runs
    on_a.write_file("mine.txt", b"a's")
    assert on_a.read_file("mine.txt") == b"a's"
    with pytest.raises(Exception):  # noqa: B017 - b's folder has no such file, whatever the error
        on_b.read_file("mine.txt")
    for compute, session_id in ((on_a, a), (on_b, b)):
        compute.release(compute.attach(session_id, None))
