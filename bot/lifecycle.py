"""The ticket lifecycle: states, actions, who may do what in which state, and deadline lights.

This module is the single place where transitions and their permissions are defined.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Status(StrEnum):
    NEW = "new"  # received; not yet placed on a grid (awaiting address or in triage)
    ASSIGNED = "assigned"  # routed to a station, waiting for its chief to claim it
    CLAIMED = "claimed"  # the chief took it on (揭榜/承榜)
    RESOLVED = "resolved"  # the chief says it is fixed; the reporter is asked to confirm
    CLOSED = "closed"  # confirmed by the reporter, or auto-closed after silence
    REOPENED = "reopened"  # the reporter was not satisfied (返工); back with the chief
    DUPLICATE = "duplicate"  # merged into another ticket
    REJECTED = "rejected"  # not a matter for the station, with a reason
    PARKED = "parked"  # 挂账: cannot be fixed soon, reviewed on a date


class Action(StrEnum):
    LOCATE = "locate"  # the report got a place inside a station's grid
    ASSIGN = "assign"  # the street office sends a triage ticket to a station
    CLAIM = "claim"
    RESOLVE = "resolve"
    REJECT = "reject"
    REASSIGN = "reassign"
    MARK_DUPLICATE = "mark_duplicate"
    PARK = "park"
    UNPARK = "unpark"
    CONFIRM = "confirm"  # reporter: 满意
    DISPUTE = "dispute"  # reporter: 不满意
    AUTO_CLOSE = "auto_close"
    REOPEN = "reopen"  # the street office reopens a closed ticket
    SPLIT = "split"  # "不是同一问题": a merged report becomes a ticket of its own again
    NOTE = "note"  # 备注: an internal remark; the state stays as it is


class Role(StrEnum):
    REPORTER = "reporter"  # the captain who reported this ticket
    CHIEF = "chief"  # the chief of the station the ticket is assigned to
    OFFICE = "office"  # the street office
    SYSTEM = "system"  # the bot itself (routing, timers)


OPEN_STATUSES = frozenset(
    {Status.NEW, Status.ASSIGNED, Status.CLAIMED, Status.REOPENED, Status.PARKED}
)
FINAL_STATUSES = frozenset({Status.CLOSED, Status.DUPLICATE, Status.REJECTED})  # but see SPLIT

_CHIEF_OR_OFFICE = frozenset({Role.CHIEF, Role.OFFICE})
_WORKING = (Status.ASSIGNED, Status.CLAIMED, Status.REOPENED)


@dataclass(frozen=True)
class Rule:
    target: Status
    roles: frozenset[Role]


def _rules() -> dict[tuple[Status, Action], Rule]:
    table: dict[tuple[Status, Action], Rule] = {
        (Status.NEW, Action.LOCATE): Rule(
            Status.ASSIGNED, frozenset({Role.REPORTER, Role.SYSTEM})
        ),
        (Status.NEW, Action.ASSIGN): Rule(Status.ASSIGNED, frozenset({Role.OFFICE})),
        (Status.NEW, Action.REJECT): Rule(Status.REJECTED, frozenset({Role.OFFICE})),
        (Status.NEW, Action.MARK_DUPLICATE): Rule(
            Status.DUPLICATE, frozenset({Role.REPORTER, Role.OFFICE, Role.SYSTEM})
        ),
        (Status.ASSIGNED, Action.CLAIM): Rule(Status.CLAIMED, frozenset({Role.CHIEF})),
        (Status.CLAIMED, Action.RESOLVE): Rule(Status.RESOLVED, frozenset({Role.CHIEF})),
        (Status.REOPENED, Action.RESOLVE): Rule(Status.RESOLVED, frozenset({Role.CHIEF})),
        (Status.CLAIMED, Action.PARK): Rule(Status.PARKED, _CHIEF_OR_OFFICE),
        (Status.REOPENED, Action.PARK): Rule(Status.PARKED, _CHIEF_OR_OFFICE),
        (Status.PARKED, Action.UNPARK): Rule(
            Status.CLAIMED, frozenset({Role.CHIEF, Role.OFFICE, Role.SYSTEM})
        ),
        (Status.RESOLVED, Action.CONFIRM): Rule(Status.CLOSED, frozenset({Role.REPORTER})),
        (Status.RESOLVED, Action.DISPUTE): Rule(Status.REOPENED, frozenset({Role.REPORTER})),
        (Status.RESOLVED, Action.AUTO_CLOSE): Rule(Status.CLOSED, frozenset({Role.SYSTEM})),
        (Status.CLOSED, Action.REOPEN): Rule(Status.REOPENED, frozenset({Role.OFFICE})),
        (Status.DUPLICATE, Action.SPLIT): Rule(
            Status.NEW, frozenset({Role.REPORTER, Role.CHIEF, Role.OFFICE})
        ),
    }
    for status in _WORKING:
        table[(status, Action.REJECT)] = Rule(Status.REJECTED, _CHIEF_OR_OFFICE)
        table[(status, Action.REASSIGN)] = Rule(Status.ASSIGNED, _CHIEF_OR_OFFICE)
        table[(status, Action.MARK_DUPLICATE)] = Rule(
            Status.DUPLICATE, frozenset({Role.CHIEF, Role.OFFICE, Role.SYSTEM})
        )
    # A note changes nothing but the history; the chief and the office may add one at any time.
    for status in Status:
        table[(status, Action.NOTE)] = Rule(status, _CHIEF_OR_OFFICE)
    # A reporter may say "same problem" of their own report until a chief has claimed it.
    table[(Status.ASSIGNED, Action.MARK_DUPLICATE)] = Rule(
        Status.DUPLICATE, frozenset({Role.REPORTER, Role.CHIEF, Role.OFFICE, Role.SYSTEM})
    )
    return table


TRANSITIONS: dict[tuple[Status, Action], Rule] = _rules()


class TicketError(Exception):
    """A domain error the bot turns into a polite, translated answer (``message_key``)."""

    message_key = "error.generic"

    def __init__(self, detail: str = "", **params: object) -> None:
        super().__init__(detail or self.message_key)
        self.params = params


class TransitionNotAllowed(TicketError):
    """The action makes no sense in the ticket's current state (e.g. claiming a closed ticket)."""

    message_key = "error.not_allowed_in_state"

    def __init__(self, status: Status, action: Action) -> None:
        super().__init__(f"cannot {action} a ticket that is {status}", status=status)
        self.status = status
        self.action = action


class NotPermitted(TicketError):
    """The person has no role that may take this action on this ticket."""

    message_key = "error.not_permitted"

    def __init__(self, action: Action, roles: Iterable[Role]) -> None:
        held = ", ".join(sorted(roles)) or "none"
        super().__init__(f"roles [{held}] may not {action}")
        self.action = action


class TicketNotFound(TicketError):
    message_key = "error.ticket_not_found"


def next_status(status: Status, action: Action, roles: Iterable[Role]) -> Status:
    """The state after ``action``, or raise if the state or the actor's roles forbid it."""
    rule = TRANSITIONS.get((status, action))
    if rule is None:
        raise TransitionNotAllowed(status, action)
    held = frozenset(roles)
    if not held & rule.roles:
        raise NotPermitted(action, held)
    return rule.target


def allowed_actions(status: Status, roles: Iterable[Role]) -> list[Action]:
    """Actions these roles may take now, in declaration order (used to draw buttons)."""
    held = frozenset(roles)
    return [
        action
        for action in Action
        if (rule := TRANSITIONS.get((status, action))) is not None and held & rule.roles
    ]


class Light(StrEnum):
    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"


YELLOW_FROM = 0.8


def deadline_light(*, started: datetime, due: datetime, now: datetime) -> Light:
    """Traffic light as 数字城管 shows it: green < 80% of the limit, yellow to 100%, red past."""
    total = (due - started).total_seconds()
    if now >= due:
        return Light.RED
    if total <= 0:
        return Light.RED
    used = (now - started).total_seconds() / total
    return Light.YELLOW if used >= YELLOW_FROM else Light.GREEN
