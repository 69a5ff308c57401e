"""Projections: read models folded from the notification log, exactly once.

Every aggregate of the application (sessions, agents, environments) appends to one
notification log. Each read model has a :class:`Projector` that reads that log in
order, folds the events it is about into rows, and skips the rest (telling them by
their topic, without decoding them). Its view stores the rows and the position it
has read to **in one transaction**, as a compare-and-set on the position, so a
projector picks up where it left off after a restart, and two processes catching
up at once cannot apply an event twice.

Every query catches its projector up first, so an event whose row cannot be stored
(a value the table cannot hold) would otherwise fail every query for ever. A batch
that fails is therefore folded again event by event, and the event that fails is
*set aside*: the projection decides what its row says instead (see
:meth:`Projector.set_aside`), the failure is logged, and the position moves on. An
event that cannot even be *read* (an unknown topic, a wrong cipher key) is not set
aside but raised as a :class:`StoreError`: that is this process's configuration or
version, not the event, and skipping it would lose it for every process that can.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from uuid import UUID

from eventsourcing.persistence import InterfaceError, OperationalError
from eventsourcing.utils import resolve_topic

from agentjournal.application.errors import StoreError
from agentjournal.domain.chain import ChainedAggregate

if TYPE_CHECKING:
    import logging

    from eventsourcing.persistence import ApplicationRecorder, Mapper, Notification

STORE_TROUBLE = (OperationalError, InterfaceError)
"""Failures of the store itself (after the commit retries), never of one event: raised."""

Row = TypeVar("Row")


class ProjectionView(abc.ABC, Generic[Row]):
    """Where a projection's rows and position are kept: one implementation per store."""

    @abc.abstractmethod
    def position(self) -> int:
        """The id of the last notification folded in (0 when none)."""

    @abc.abstractmethod
    def commit(self, rows: Sequence[Row], previous: int, position: int) -> bool:
        """Store ``rows`` and move the position from ``previous`` to ``position``,
        atomically. Returns False, storing nothing, when the position is no longer
        ``previous`` (another process got there first)."""


class Projector(abc.ABC, Generic[Row]):
    """Folds the application's notifications into a :class:`ProjectionView`."""

    batch_size = 500
    commit_attempts = 5

    def __init__(
        self, recorder: ApplicationRecorder, mapper: Mapper[UUID], view: ProjectionView[Row]
    ) -> None:
        self.recorder = recorder
        self.mapper = mapper
        self.view = view

    @abc.abstractmethod
    def wants(self, event_class: type) -> bool:
        """Whether this projection folds events of ``event_class`` (others are skipped)."""

    @abc.abstractmethod
    def fold(self, events: Sequence[Any]) -> list[Row]:
        """The rows these events change, with the events folded in."""

    @abc.abstractmethod
    def set_aside(self, event: Any, error: Exception) -> tuple[list[Row], str]:
        """The rows to store in place of an event that could not be folded (``error``),
        so the projection can move past it, and a note saying what is missing (logged
        once the rows are stored)."""

    def catch_up(self) -> int:
        """Fold in every notification not yet in the view. Returns how many notifications
        were read past, folded or skipped."""
        read = 0
        while True:
            previous = self.view.position()
            notifications = self.recorder.select_notifications(
                start=previous, limit=self.batch_size, inclusive_of_start=False
            )
            if not notifications:
                return read
            events = [self._event(n) for n in notifications]
            try:
                wanted = [e for e in events if e is not None]
                if self._commit(self.fold(wanted), previous, notifications[-1].id):
                    read += len(notifications)
            except STORE_TROUBLE:
                raise
            except Exception:  # one of these events cannot be folded: find which
                read += self._fold_one_by_one([n.id for n in notifications], events, previous)

    def _fold_one_by_one(self, positions: list[int], events: list[Any], previous: int) -> int:
        """Fold events one transaction each, setting aside any that cannot be stored.
        Stops early (another projector moved the position first); returns how many it
        read past."""
        read = 0
        for position, event in zip(positions, events):
            try:
                committed = self._commit(self.fold([] if event is None else [event]), previous, position)
            except STORE_TROUBLE:
                raise
            except Exception as e:
                if event is None:
                    raise
                committed = self._set_aside(event, e, previous, position)
            if not committed:
                break
            read += 1
            previous = position
        return read

    def _set_aside(self, event: Any, error: Exception, previous: int, position: int) -> bool:
        """Move past ``event``, storing what the projection puts in its place. If even that
        cannot be stored, the store is at fault, not the event, and the error is raised."""
        rows, note = self.set_aside(event, error)
        committed = self._commit(rows, previous, position)
        if committed:
            self.log().warning("%s %s, notification %d: %s", type(event).__qualname__.split(".")[0].lower(),
                               event.originator_id, position, note)  # fmt: skip
        return committed

    @classmethod
    def log(cls) -> logging.Logger:
        """Where set-aside events are reported: the logger of the projection's own module.
        logging is imported here, by the first event set aside, not by every process that
        opens a store."""
        import logging

        return logging.getLogger(cls.__module__)

    def _commit(self, rows: list[Row], previous: int, position: int) -> bool:
        """Commit a batch; a transient failure (a deadlock, a serialisation failure) rolled
        it back whole, so it is simply tried again."""
        attempt = 1
        while True:
            try:
                return self.view.commit(rows, previous, position)
            except OperationalError:
                if attempt == self.commit_attempts:
                    raise
                time.sleep(0.01 * attempt)
                attempt += 1

    def _event(self, notification: Notification) -> Any:
        """The notification's event when this projection wants it, else None. Its class
        is told from its topic, so events of other aggregates are never decoded here."""
        try:
            event_class = resolve_topic(notification.topic)
        except Exception as e:  # a topic of another program, or of a newer version of this one
            raise _unreadable(notification, e) from None
        if not (isinstance(event_class, type) and issubclass(event_class, ChainedAggregate.Event)):
            raise StoreError(
                f"notification {notification.id} of this store is not an agentjournal event "
                f"(topic {notification.topic!r}): is this another program's store?"
            )
        if not self.wants(event_class):
            return None
        try:
            return self.mapper.to_domain_event(notification)
        except Exception as e:  # undecodable bytes, a wrong key
            raise _unreadable(notification, e) from None


def _unreadable(notification: Notification, error: Exception) -> StoreError:
    return StoreError(
        f"notification {notification.id} of this store cannot be read as an agentjournal event "
        f"(topic {notification.topic!r}): {error}"
    )
