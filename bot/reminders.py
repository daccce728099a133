"""Reminder policy: when a station chief is reminded about a ticket, when the street office
is told (督办), and when a resolved ticket the reporter never answered closes by itself.
Pure functions of the clock the caller passes in; the scheduler tick applies them.

Rules decided here (the integrator relies on them):

- A tick calls :func:`plan` for a ticket whose stored ``next_at`` has come. A working ticket
  (assigned, claimed, reopened) gets a reminder and its next look ``every`` later; a resolved
  one may close by itself (below); any other status gets ``next_at=None`` (parked tickets are
  woken by their review date elsewhere).
- The first reminder is ``first_after`` after assignment (:func:`first_reminder_at`); after a
  reopen the round starts again from the reopen moment with the same function.
- Escalation goes out once (``escalated`` says whether it did), at the first tick where either
  ``escalate_after`` reminders have gone unanswered (i.e. with the next reminder after the
  N-th, once the chief had a whole ``every`` to act on it) or the deadline has passed. The
  next look is never later than the deadline, so a breach is noticed when it happens.
  The escalation tick also reminds the chief: past the deadline reminders continue.
- Quiet hours are local wall-clock times in the deployment's zone: a moment is quiet when its
  local time is inside the window. Nothing — reminder or escalation — goes out in them (the
  office chat is a daytime chat too); what falls due waits for their end. When clocks go
  forward over the end, quiet hours end at the jump; when clocks go back and times repeat,
  the repeated stretch is quiet again if its wall-clock times are.
- "处理中" with an expected date: while ``now`` is before both ``expected_by`` and the
  deadline, nothing is sent and the next look is the earlier of the two. Calling :func:`plan`
  at the moment of the reply therefore gives the new ``next_at`` without reminding.
- A late tick (the scheduler was down) sends one reminder, not one per missed interval.
- Auto-close: a resolved ticket the reporter has neither confirmed nor disputed is closed by
  the system ``auto_close_after`` after ``resolved_at`` (the integrator stores that moment as
  the ticket's next look when it is resolved; an answer before it moves the ticket on and
  clears it). Closing tells the reporter and the chief, so it follows the same quiet hours:
  a close that falls due inside them waits for their end, and the reporter may still answer
  until then. Without ``auto_close_after`` a resolved ticket is left alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.deployment import QuietHours, Reminders, format_duration
from bot.lifecycle import Status

# Statuses in which a chief owes work on the ticket and is reminded about it.
REMINDED_STATUSES = frozenset({Status.ASSIGNED, Status.CLAIMED, Status.REOPENED})


@dataclass(frozen=True)
class ReminderPlan:
    """What the scheduler tick does for one ticket now."""

    remind: bool  # send a reminder to the chief now
    escalate: bool  # tell the street office (督办) now
    next_at: datetime | None  # when to look at this ticket again (None: never — it is closed)
    reason: str  # short, for the event log
    auto_close: bool = False  # close the resolved ticket now: the reporter never answered


def first_reminder_at(
    *, created: datetime, policy: Reminders, zone: ZoneInfo, due: datetime | None = None
) -> datetime:
    """When a newly assigned (or reopened) ticket is first looked at: ``first_after`` after
    ``created``, earlier if the deadline comes first, and never inside quiet hours."""
    created = _utc(created, "created")
    moment = created + policy.first_after
    if due is not None:
        # A deadline shorter than first_after must still escalate when it passes.
        moment = max(created, min(moment, _utc(due, "due")))
    return out_of_quiet_hours(moment, quiet=policy.quiet_hours, zone=zone)


def plan(
    *,
    now: datetime,
    status: Status,
    due: datetime | None,
    reminders_sent: int,
    escalated: bool,
    expected_by: datetime | None,
    policy: Reminders,
    zone: ZoneInfo,
    resolved_at: datetime | None = None,
    auto_close_after: timedelta | None = None,
) -> ReminderPlan:
    """What to do for a ticket whose next look has come (see the module docstring)."""
    now = _utc(now, "now")
    due = None if due is None else _utc(due, "due")
    expected_by = None if expected_by is None else _utc(expected_by, "expected_by")
    if reminders_sent < 0:
        raise ValueError(f"reminders_sent cannot be negative, got {reminders_sent}")
    status = Status(status)

    if status is Status.RESOLVED and auto_close_after is not None:
        resolved = now if resolved_at is None else _utc(resolved_at, "resolved_at")
        return _closing(now, resolved + auto_close_after, auto_close_after, policy, zone)
    if status not in REMINDED_STATUSES:
        return ReminderPlan(False, False, None, f"no reminders while {status}")

    quiet = policy.quiet_hours
    if _is_quiet(now, quiet=quiet, zone=zone):
        until = out_of_quiet_hours(now, quiet=quiet, zone=zone)
        return ReminderPlan(False, False, until, f"quiet hours until {_local(until, zone):%H:%M}")

    overdue = due is not None and now >= due
    if expected_by is not None and now < expected_by and not overdue:
        # The chief said 处理中 until expected_by; the deadline still wins if it comes first.
        wake = expected_by if due is None else min(expected_by, due)
        return ReminderPlan(
            False,
            False,
            out_of_quiet_hours(wake, quiet=quiet, zone=zone),
            f"in progress, expected by {_local(expected_by, zone):%Y-%m-%d %H:%M}",
        )

    count = reminders_sent + 1
    reasons = [f"{_ordinal(count)} reminder"]
    escalate = False
    if not escalated:
        if overdue:
            assert due is not None
            escalate = True
            reasons.append(f"deadline passed {_ago(now - due)}")
        elif reminders_sent >= policy.escalate_after:
            escalate = True
            reasons.append(f"{reminders_sent} reminders unanswered")
    if escalate:
        reasons.append("escalated to the street office")

    wake = now + policy.every
    if due is not None and not (escalated or escalate) and due < wake:
        wake = due  # look again when the deadline passes, to escalate on time
    return ReminderPlan(
        True, escalate, out_of_quiet_hours(wake, quiet=quiet, zone=zone), "; ".join(reasons)
    )


def _closing(
    now: datetime, close_at: datetime, after: timedelta, policy: Reminders, zone: ZoneInfo
) -> ReminderPlan:
    """A resolved ticket: wait for the reporter until ``close_at``, then close it, outside
    quiet hours."""
    quiet = policy.quiet_hours
    if now < close_at:
        wake = out_of_quiet_hours(close_at, quiet=quiet, zone=zone)
        shown = f"{_local(wake, zone):%Y-%m-%d %H:%M}"
        return ReminderPlan(False, False, wake, f"waiting for the reporter until {shown}")
    if _is_quiet(now, quiet=quiet, zone=zone):
        until = out_of_quiet_hours(now, quiet=quiet, zone=zone)
        return ReminderPlan(False, False, until, f"quiet hours until {_local(until, zone):%H:%M}")
    return ReminderPlan(
        False, False, None, f"no answer from the reporter within {format_duration(after)}",
        auto_close=True,
    )


def out_of_quiet_hours(moment: datetime, *, quiet: QuietHours | None, zone: ZoneInfo) -> datetime:
    """``moment`` itself if it is outside quiet hours, else the first moment after it whose
    local wall-clock time is outside them (in UTC)."""
    moment = _utc(moment, "moment")
    # A window can end inside a skipped hour and the time after the jump can be quiet again
    # only in contrived windows; a few rounds settle every real case.
    for _ in range(4):
        if not _is_quiet(moment, quiet=quiet, zone=zone):
            return moment
        assert quiet is not None
        moment = _window_end(moment, quiet=quiet, zone=zone)
    return moment


def _is_quiet(moment: datetime, *, quiet: QuietHours | None, zone: ZoneInfo) -> bool:
    return quiet is not None and quiet.contains(_local(moment, zone).time())


def _window_end(moment: datetime, *, quiet: QuietHours, zone: ZoneInfo) -> datetime:
    """The end of the quiet window that ``moment`` (quiet) is in, as the first instant at or
    after which the local clock shows the end time."""
    local = _local(moment, zone)
    day = local.date()
    if quiet.start > quiet.end and local.time().replace(tzinfo=None) >= quiet.start:
        day += timedelta(days=1)  # the window wraps midnight: it ends tomorrow
    return _first_instant_showing(day, quiet.end, zone=zone, not_before=moment)


def _first_instant_showing(
    day: date, clock: time, *, zone: ZoneInfo, not_before: datetime
) -> datetime:
    wall = datetime.combine(day, clock)
    candidates = [wall.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1)]
    real = [c for c in candidates if _local(c, zone).replace(tzinfo=None) == wall]
    if not real:
        # The clocks jump over this time tonight: the window ends at the jump itself.
        return _first_instant_at_or_after(wall, zone=zone, between=candidates)
    # A time shown twice (clocks go back): the first showing not before the quiet moment.
    later = [c for c in sorted(set(real)) if c >= not_before]
    return later[0] if later else max(real)


def _first_instant_at_or_after(
    wall: datetime, *, zone: ZoneInfo, between: Iterable[datetime]
) -> datetime:
    """Bisect (to the second) for the first instant whose local clock reads ``wall`` or later;
    the two fold readings of a skipped time lie on either side of the jump."""
    low, high = sorted(between)
    lo, hi = int(low.timestamp()), int(high.timestamp())
    while lo < hi:
        mid = (lo + hi) // 2
        if _local(datetime.fromtimestamp(mid, UTC), zone).replace(tzinfo=None) >= wall:
            hi = mid
        else:
            lo = mid + 1
    return datetime.fromtimestamp(lo, UTC)


def _utc(moment: datetime, name: str) -> datetime:
    if not isinstance(moment, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(moment).__name__}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime (UTC), got the naive {moment}")
    return moment.astimezone(UTC)


def _local(moment: datetime, zone: ZoneInfo) -> datetime:
    return moment.astimezone(zone)


def _ordinal(count: int) -> str:
    suffix = "th" if 10 <= count % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(count % 10, "th")
    return f"{count}{suffix}"


def _ago(elapsed: timedelta) -> str:
    return "just now" if elapsed < timedelta(seconds=1) else f"{format_duration(elapsed)} ago"
