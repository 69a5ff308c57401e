"""The ``AnnotationLog`` aggregate: the notes and scores people give a session's events.

A session's log is evidence of what happened, and is never edited; what someone thinks
of it afterwards (this reply was wrong, this tool call scores 0.2) is history of its own.
Each session has at most one annotation log, an aggregate of its own in the same event
store, hash-chained as sessions are, whose id is derived from the session's
(:func:`annotation_log_id`), so it is found without an index. Each annotation names the
event it is about by the session's id, that event's version and that event's hash: the
annotation vouches for the exact event it judged, and the session's log and head hash
stay as they were. A terminated (or archived) session is still annotated: judging a run
comes after it.
"""

from __future__ import annotations

import math
from uuid import UUID, uuid5

import msgspec
from eventsourcing.domain import Aggregate

from agentjournal.domain.chain import GENESIS, ChainedAggregate, as_recorded
from agentjournal.domain.errors import SessionError

ANNOTATION_LOGS = UUID("5a1e0b0c-7a7e-4d2b-9a39-61d3a0b1c0de")
"""The namespace of annotation logs' ids (see :func:`annotation_log_id`)."""

NOTE_LENGTH = 10_000
"""The longest note, in characters: a judgement, not a document."""


def annotation_log_id(session_id: UUID) -> UUID:
    """The id of a session's annotation log: the same for the same session in every
    store, and never a session's own id."""
    return uuid5(ANNOTATION_LOGS, str(session_id))


class AnnotationRefused(SessionError):
    """An annotation that says nothing, a score that is no number, a note too long."""


class Annotation(msgspec.Struct, frozen=True, kw_only=True):
    """A note, a score or both about one event of a session."""

    id: UUID
    event_version: int
    event_hash: str
    """The annotated event's own ``hash``: which event, exactly, was judged."""
    event_type: str
    """The annotated event's type name (``AssistantMessageAdded``), for readers."""
    note: str = ""
    score: float | None = None
    """Any finite number; what scale it is on is the annotator's (0 to 1, 1 to 5, ...)."""


def check_annotation(note: str, score: float | None) -> None:
    """Refuse an annotation with neither a note nor a score, a score that is not a
    finite number, or a note over :data:`NOTE_LENGTH` characters."""
    if not note.strip() and score is None:
        raise AnnotationRefused("an annotation needs a note, a score, or both")
    if score is not None and (isinstance(score, bool) or not math.isfinite(score)):
        raise AnnotationRefused(f"a score must be a finite number, not {score!r}")
    if len(note) > NOTE_LENGTH:
        raise AnnotationRefused(f"a note holds at most {NOTE_LENGTH} characters, not {len(note)}")


class AnnotationLog(ChainedAggregate):
    """The annotations of one session, in the order they were made."""

    class Event(ChainedAggregate.Event):
        """Every event of an annotation log carries its link in the hash chain."""

    class Created(Event, Aggregate.Created):
        pass

    class AnnotationLogOpened(Created):
        session_id: UUID

    def __init__(self, session_id: UUID) -> None:
        self.session_id = session_id
        self.annotations: list[Annotation] = []

    @classmethod
    def open(cls, session_id: UUID) -> AnnotationLog:
        """The annotation log of ``session_id``, not yet stored."""
        return cls._create_chained(
            cls.AnnotationLogOpened,
            GENESIS,
            aggregate_id=annotation_log_id(session_id),
            session_id=session_id,
        )

    def annotate(self, annotation: Annotation) -> None:
        check_annotation(annotation.note, annotation.score)
        self.trigger_event(self.AnnotationAdded, annotation=as_recorded(annotation))

    class AnnotationAdded(Event):
        annotation: Annotation

        def apply(self, log: AnnotationLog) -> None:
            log.annotations.append(self.annotation)
