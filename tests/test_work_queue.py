"""The work queue of self-hosted environments, on each store: claims, leases kept by
heartbeats with compare-and-set, reclaims, stops, and worker keys stored hashed."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest

from agentjournal.application.service import SessionService
from agentjournal.application.work_queue import (
    NO_HEARTBEAT,
    StaleHeartbeat,
    WorkConflict,
    WorkerKeyRefused,
    WorkQueue,
)

pytestmark = pytest.mark.timeout(60)

ENVIRONMENT = str(uuid.uuid4())


@pytest.fixture
def service(store_env: dict[str, str]) -> Iterator[SessionService]:
    opened = SessionService(store_env)
    yield opened
    opened.close()


def test_an_item_is_claimed_acknowledged_and_kept_by_heartbeats_that_echo_the_last(service):
    work = service.work
    offered = work.offer(ENVIRONMENT, "s1")
    assert work.offer(ENVIRONMENT, "s1") == offered  # one open item per session
    item = work.poll(ENVIRONMENT, "key/w1")
    assert item is not None and item.id == offered.id and item.state == "queued"
    assert work.poll(ENVIRONMENT, "key/w2") is None  # delivered, not yet to be reclaimed
    assert work.ack(ENVIRONMENT, item.id).state == "starting"
    first = work.heartbeat(ENVIRONMENT, item.id, NO_HEARTBEAT)
    assert (first.state, first.lease_extended, first.ttl_seconds) == ("active", True, work.lease_seconds)
    second = work.heartbeat(ENVIRONMENT, item.id, str(first.last_heartbeat))
    assert second.last_heartbeat != first.last_heartbeat
    with pytest.raises(StaleHeartbeat) as stale:
        work.heartbeat(ENVIRONMENT, item.id, str(first.last_heartbeat))
    assert (
        stale.value.current.last_heartbeat == second.last_heartbeat and not stale.value.current.lease_extended
    )


def test_an_item_whose_lease_ran_out_is_claimed_again_and_its_old_holder_is_refused(service):
    work = WorkQueue(service.work.rows, lease_seconds=0.0)
    item = work.offer(ENVIRONMENT, "s2")
    assert work.poll(ENVIRONMENT, "key/lost") is not None
    work.ack(ENVIRONMENT, item.id)
    again = work.poll(ENVIRONMENT, "key/survivor")  # the lease (0 s) ran out at once
    assert again is not None and again.id == item.id and again.holder == "key/survivor"
    with pytest.raises(StaleHeartbeat):
        work.heartbeat(ENVIRONMENT, item.id, NO_HEARTBEAT)  # not acknowledged by the survivor yet


def test_concurrent_polls_hand_each_item_to_one_worker(service, store_env):
    for number in range(8):
        service.work.offer(ENVIRONMENT, f"many-{number}")
    claimed: list[str] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        own = SessionService(store_env)
        try:
            while (item := own.work.poll(ENVIRONMENT, name, reclaim_ms=60_000)) is not None:
                with lock:
                    claimed.append(item.id)
        finally:
            own.close()

    threads = [threading.Thread(target=worker, args=(f"key/w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(claimed) == 8 and len(set(claimed)) == 8


def test_stopping_gracefully_then_for_good_and_a_stopped_item_frees_the_session(service):
    work = service.work
    item = work.offer(ENVIRONMENT, "s3")
    work.poll(ENVIRONMENT, "key/w")
    work.ack(ENVIRONMENT, item.id)
    beat = work.heartbeat(ENVIRONMENT, item.id, NO_HEARTBEAT)
    assert work.stop(ENVIRONMENT, item.id, force=False).state == "stopping"
    told = work.heartbeat(ENVIRONMENT, item.id, "anything")  # no compare once stopping
    assert (told.state, told.lease_extended) == (
        "stopping",
        False,
    ) and told.last_heartbeat == beat.last_heartbeat
    assert work.stop(ENVIRONMENT, item.id, force=True).state == "stopped"
    with pytest.raises(WorkConflict):
        work.stop(ENVIRONMENT, item.id, force=True)
    assert work.latest("s3") == work.get(ENVIRONMENT, item.id)  # stopped, still the newest
    newer = work.offer(ENVIRONMENT, "s3")
    assert newer.id != item.id and work.latest("s3") == newer and work.latest("never-queued") is None


def test_worker_keys_are_stored_as_digests_and_revoked_keys_are_refused(service):
    minted = service.work.mint_key(ENVIRONMENT, "laptop")
    assert minted.secret.startswith("ajwk_") and minted.secret not in str(service.work.keys(ENVIRONMENT))
    assert service.work.key_for(minted.secret).id == minted.key.id
    service.work.revoke_key(ENVIRONMENT, minted.key.id)
    with pytest.raises(WorkerKeyRefused) as refused:
        service.work.key_for(minted.secret)
    assert refused.value.status == 401
