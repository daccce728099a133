"""Reminder policy with a moved clock: cadence, quiet hours (Shanghai, Berlin across DST),
escalation once, stop and restart, 处理中 with a date."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.deployment import QuietHours, Reminders
from bot.lifecycle import Status
from bot.reminders import ReminderPlan, first_reminder_at, out_of_quiet_hours, plan

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
H = timedelta(hours=1)


def policy(
    first_after: str = "2h", every: str = "4h", escalate_after: int = 3, quiet: str | None = None
) -> Reminders:
    return Reminders.model_validate(
        {
            "first_after": first_after,
            "every": every,
            "escalate_after": escalate_after,
            "quiet_hours": quiet,
        }
    )


def local(zone: ZoneInfo, *args: int, fold: int = 0) -> datetime:
    """A wall-clock time in ``zone`` as the aware UTC moment the bot works with."""
    year, month, day, hour, minute = args
    return datetime(year, month, day, hour, minute, tzinfo=zone, fold=fold).astimezone(UTC)


@dataclass
class Ticket:
    """What the integrator stores per ticket, and what the chief and the office received."""

    assigned: datetime
    policy: Reminders
    zone: ZoneInfo
    status: Status = Status.ASSIGNED
    due: datetime | None = None
    expected_by: datetime | None = None
    reminders_sent: int = 0
    escalated: bool = False
    next_at: datetime | None = None
    reminders: list[datetime] = field(default_factory=list)
    escalations: list[datetime] = field(default_factory=list)
    log: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.next_at = first_reminder_at(
            created=self.assigned, policy=self.policy, zone=self.zone, due=self.due
        )

    def tick(self, now: datetime) -> ReminderPlan | None:
        """What a scheduler tick at ``now`` does: only tickets whose look has come."""
        if self.next_at is None or self.next_at > now:
            return None
        step = plan(
            now=now,
            status=self.status,
            due=self.due,
            reminders_sent=self.reminders_sent,
            escalated=self.escalated,
            expected_by=self.expected_by,
            policy=self.policy,
            zone=self.zone,
        )
        if step.remind:
            self.reminders_sent += 1
            self.reminders.append(now)
        if step.escalate:
            self.escalated = True
            self.escalations.append(now)
        self.next_at = step.next_at
        self.log.append(step.reason)
        return step

    def run(self, until: datetime, *, start: datetime | None = None, step: timedelta) -> None:
        now = start or self.assigned
        while now <= until:
            self.tick(now)
            now += step

    def local_reminders(self) -> list[str]:
        return [f"{moment.astimezone(self.zone):%d %H:%M}" for moment in self.reminders]


# --- cadence -----------------------------------------------------------------------------------


def test_cadence_over_a_day_without_quiet_hours() -> None:
    ticket = Ticket(local(SHANGHAI, 2024, 5, 6, 9, 0), policy(escalate_after=100), SHANGHAI)
    ticket.run(local(SHANGHAI, 2024, 5, 7, 9, 0), step=timedelta(minutes=1))
    assert ticket.local_reminders() == [
        "06 11:00", "06 15:00", "06 19:00", "06 23:00", "07 03:00", "07 07:00",
    ]  # fmt: skip
    assert ticket.escalations == []
    assert ticket.log[:3] == ["1st reminder", "2nd reminder", "3rd reminder"]


def test_cadence_with_quiet_hours_waits_for_the_morning_and_continues_from_there() -> None:
    ticket = Ticket(
        local(SHANGHAI, 2024, 5, 6, 9, 0), policy(escalate_after=100, quiet="22:00-08:00"),
        SHANGHAI,
    )  # fmt: skip
    ticket.run(local(SHANGHAI, 2024, 5, 7, 16, 0), step=timedelta(minutes=1))
    assert ticket.local_reminders() == [
        "06 11:00", "06 15:00", "06 19:00", "07 08:00", "07 12:00", "07 16:00",
    ]  # fmt: skip


def test_a_coarse_or_late_tick_sends_one_reminder_not_one_per_missed_interval() -> None:
    ticket = Ticket(local(SHANGHAI, 2024, 5, 6, 9, 0), policy(escalate_after=100), SHANGHAI)
    # The scheduler was down from 09:00 to 21:00: three reminders were missed.
    ticket.tick(local(SHANGHAI, 2024, 5, 6, 21, 0))
    assert ticket.local_reminders() == ["06 21:00"]
    assert ticket.next_at == local(SHANGHAI, 2024, 5, 7, 1, 0)


def test_a_tick_before_the_look_is_due_does_nothing() -> None:
    ticket = Ticket(local(SHANGHAI, 2024, 5, 6, 9, 0), policy(), SHANGHAI)
    ticket.run(local(SHANGHAI, 2024, 5, 6, 10, 59), step=timedelta(seconds=30))
    assert ticket.reminders == []


def test_second_scale_intervals_for_the_demo() -> None:
    start = datetime(2024, 5, 6, 3, 0, tzinfo=UTC)
    ticket = Ticket(start, policy("5s", "10s", 2), SHANGHAI)
    ticket.run(start + timedelta(minutes=1), step=timedelta(seconds=1))
    assert [int((m - start).total_seconds()) for m in ticket.reminders] == [5, 15, 25, 35, 45, 55]
    assert [int((m - start).total_seconds()) for m in ticket.escalations] == [25]


# --- quiet hours -------------------------------------------------------------------------------

NIGHT = QuietHours(time(22, 0), time(8, 0))


@pytest.mark.parametrize(
    ("wall", "expected"),
    [
        ((2024, 5, 6, 21, 59), (2024, 5, 6, 21, 59)),  # before: goes out as planned
        ((2024, 5, 6, 22, 0), (2024, 5, 7, 8, 0)),  # start is quiet
        ((2024, 5, 6, 23, 30), (2024, 5, 7, 8, 0)),  # before midnight: tomorrow morning
        ((2024, 5, 7, 3, 0), (2024, 5, 7, 8, 0)),  # after midnight: this morning
        ((2024, 5, 7, 8, 0), (2024, 5, 7, 8, 0)),  # end is not quiet
    ],
)
def test_quiet_hours_across_midnight_in_shanghai(
    wall: tuple[int, ...], expected: tuple[int, ...]
) -> None:
    moment = out_of_quiet_hours(local(SHANGHAI, *wall), quiet=NIGHT, zone=SHANGHAI)
    assert moment == local(SHANGHAI, *expected)
    assert moment.tzinfo is UTC


def test_quiet_hours_within_a_day() -> None:
    lunch = QuietHours(time(12, 0), time(13, 30))
    moment = out_of_quiet_hours(local(SHANGHAI, 2024, 5, 6, 12, 10), quiet=lunch, zone=SHANGHAI)
    assert moment == local(SHANGHAI, 2024, 5, 6, 13, 30)
    late = local(SHANGHAI, 2024, 5, 6, 23, 0)
    assert out_of_quiet_hours(late, quiet=lunch, zone=SHANGHAI) == late


def test_no_quiet_hours_changes_nothing() -> None:
    moment = local(SHANGHAI, 2024, 5, 6, 3, 0)
    assert out_of_quiet_hours(moment, quiet=None, zone=SHANGHAI) == moment


@pytest.mark.parametrize(
    ("wall", "utc"),
    [
        # Spring: Sun 31 Mar 2024, 02:00 CET -> 03:00 CEST. 08:00 is CEST (UTC+2).
        ((2024, 3, 30, 23, 0), datetime(2024, 3, 31, 6, 0, tzinfo=UTC)),
        ((2024, 3, 31, 1, 30), datetime(2024, 3, 31, 6, 0, tzinfo=UTC)),
        # Autumn: Sun 27 Oct 2024, 03:00 CEST -> 02:00 CET. 08:00 is CET (UTC+1).
        ((2024, 10, 26, 23, 0), datetime(2024, 10, 27, 7, 0, tzinfo=UTC)),
        ((2024, 10, 27, 2, 30), datetime(2024, 10, 27, 7, 0, tzinfo=UTC)),
    ],
)
def test_quiet_hours_across_midnight_in_berlin_on_both_dst_nights(
    wall: tuple[int, ...], utc: datetime
) -> None:
    assert out_of_quiet_hours(local(BERLIN, *wall), quiet=NIGHT, zone=BERLIN) == utc


def test_quiet_hours_ending_at_a_time_that_does_not_exist_end_at_the_jump() -> None:
    # 02:30 does not exist on 31 Mar 2024 in Berlin: the clock goes from 02:00 to 03:00.
    window = QuietHours(time(22, 0), time(2, 30))
    moment = out_of_quiet_hours(local(BERLIN, 2024, 3, 31, 1, 10), quiet=window, zone=BERLIN)
    assert moment == datetime(2024, 3, 31, 1, 0, tzinfo=UTC)  # 03:00 CEST, not 03:30
    assert f"{moment.astimezone(BERLIN):%H:%M}" == "03:00"


def test_quiet_hours_ending_at_a_time_that_exists_twice() -> None:
    # 02:00-03:00 happens twice on 27 Oct 2024 in Berlin (CEST, then CET).
    window = QuietHours(time(22, 0), time(2, 30))
    first = local(BERLIN, 2024, 10, 27, 2, 10, fold=0)
    assert out_of_quiet_hours(first, quiet=window, zone=BERLIN) == datetime(
        2024, 10, 27, 0, 30, tzinfo=UTC
    )  # the first 02:30 (CEST)
    # Quiet hours are wall-clock times: the repeated 02:10 is quiet again, until the second 02:30.
    again = local(BERLIN, 2024, 10, 27, 2, 10, fold=1)
    assert out_of_quiet_hours(again, quiet=window, zone=BERLIN) == datetime(
        2024, 10, 27, 1, 30, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("assigned", "expected"),
    [
        ((2024, 3, 30, 9, 0), ["30 11:00", "30 15:00", "30 19:00", "31 08:00", "31 12:00"]),
        ((2024, 10, 26, 9, 0), ["26 11:00", "26 15:00", "26 19:00", "27 08:00", "27 12:00"]),
    ],
)
def test_simulated_days_across_berlin_dst_changes(
    assigned: tuple[int, ...], expected: list[str]
) -> None:
    start = local(BERLIN, *assigned)
    ticket = Ticket(start, policy(escalate_after=100, quiet="22:00-08:00"), BERLIN)
    ticket.run(start + timedelta(hours=28), step=timedelta(minutes=1))
    assert ticket.local_reminders() == expected


def test_a_tick_landing_in_quiet_hours_waits_and_says_until_when() -> None:
    step = plan(
        now=local(SHANGHAI, 2024, 5, 6, 23, 0),
        status=Status.CLAIMED,
        due=None,
        reminders_sent=1,
        escalated=False,
        expected_by=None,
        policy=policy(quiet="22:00-08:00"),
        zone=SHANGHAI,
    )
    assert step == ReminderPlan(
        False, False, local(SHANGHAI, 2024, 5, 7, 8, 0), "quiet hours until 08:00"
    )


# --- escalation --------------------------------------------------------------------------------


def test_escalation_by_count_once_after_the_nth_reminder_went_unanswered() -> None:
    ticket = Ticket(local(SHANGHAI, 2024, 5, 6, 9, 0), policy(escalate_after=3), SHANGHAI)
    ticket.run(local(SHANGHAI, 2024, 5, 9, 9, 0), step=timedelta(minutes=5))
    assert len(ticket.reminders) == 18  # reminders continue after the escalation
    assert ticket.escalations == [local(SHANGHAI, 2024, 5, 6, 23, 0)]  # with the 4th reminder
    assert ticket.log[3] == "4th reminder; 3 reminders unanswered; escalated to the street office"


def test_escalation_by_deadline_happens_when_it_passes_not_at_the_next_reminder() -> None:
    assigned = local(SHANGHAI, 2024, 5, 6, 9, 0)
    ticket = Ticket(assigned, policy(escalate_after=100), SHANGHAI, due=assigned + 7 * H)
    ticket.run(assigned + 48 * H, step=timedelta(minutes=1))
    assert ticket.escalations == [assigned + 7 * H]
    assert ticket.local_reminders()[:4] == ["06 11:00", "06 15:00", "06 16:00", "06 20:00"]
    assert (
        ticket.log[2] == "3rd reminder; deadline passed just now; escalated to the street office"
    )


def test_deadline_breached_in_quiet_hours_escalates_when_they_end() -> None:
    assigned = local(SHANGHAI, 2024, 5, 6, 9, 0)
    due = local(SHANGHAI, 2024, 5, 6, 23, 0)
    ticket = Ticket(assigned, policy(escalate_after=100, quiet="22:00-08:00"), SHANGHAI, due=due)
    ticket.run(assigned + 48 * H, step=timedelta(minutes=1))
    assert ticket.escalations == [local(SHANGHAI, 2024, 5, 7, 8, 0)]
    assert "deadline passed 9h ago" in ticket.log[3]


def test_deadline_shorter_than_the_first_reminder_still_escalates_on_time() -> None:
    assigned = local(SHANGHAI, 2024, 5, 6, 9, 0)
    ticket = Ticket(assigned, policy(first_after="2h"), SHANGHAI, due=assigned + H / 2)
    assert ticket.next_at == assigned + H / 2
    ticket.run(assigned + 5 * H, step=timedelta(minutes=1))
    assert ticket.escalations == [assigned + H / 2]


def test_count_and_deadline_together_escalate_once() -> None:
    assigned = local(SHANGHAI, 2024, 5, 6, 9, 0)
    ticket = Ticket(assigned, policy(escalate_after=1), SHANGHAI, due=assigned + 6 * H)
    ticket.run(assigned + 72 * H, step=timedelta(minutes=10))
    assert ticket.escalations == [assigned + 6 * H]  # count (2nd look) and deadline coincide
    assert len(ticket.escalations) == 1


def test_an_already_escalated_ticket_is_not_escalated_again_when_overdue() -> None:
    step = plan(
        now=datetime(2024, 5, 6, 4, 0, tzinfo=UTC),
        status=Status.CLAIMED,
        due=datetime(2024, 5, 6, 1, 0, tzinfo=UTC),
        reminders_sent=9,
        escalated=True,
        expected_by=None,
        policy=policy(),
        zone=SHANGHAI,
    )
    assert (step.remind, step.escalate) == (True, False)
    assert step.next_at == datetime(2024, 5, 6, 8, 0, tzinfo=UTC)


# --- stop and restart --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status",
    [Status.NEW, Status.RESOLVED, Status.CLOSED, Status.REJECTED, Status.DUPLICATE, Status.PARKED],
)
def test_no_reminders_once_a_ticket_leaves_the_chiefs_hands(status: Status) -> None:
    assigned = local(SHANGHAI, 2024, 5, 6, 9, 0)
    ticket = Ticket(assigned, policy(), SHANGHAI, due=assigned + 3 * H)
    ticket.run(assigned + 5 * H, step=timedelta(minutes=1))
    assert len(ticket.reminders) == 2
    ticket.status = status  # the chief resolves / rejects / merges ..., or the office parks it
    ticket.run(assigned + 72 * H, start=assigned + 5 * H, step=timedelta(minutes=1))
    assert len(ticket.reminders) == 2
    assert ticket.next_at is None
    assert ticket.log[-1] == f"no reminders while {status}"


def test_reminders_restart_on_reopen() -> None:
    assigned = local(SHANGHAI, 2024, 5, 6, 9, 0)
    ticket = Ticket(assigned, policy(escalate_after=100), SHANGHAI)
    ticket.run(assigned + 5 * H, step=timedelta(minutes=1))
    ticket.status = Status.RESOLVED
    ticket.run(assigned + 24 * H, start=assigned + 5 * H, step=timedelta(minutes=1))
    assert len(ticket.reminders) == 1 and ticket.next_at is None

    reopened = assigned + 24 * H  # the reporter says 不满意
    ticket.status = Status.REOPENED
    ticket.next_at = first_reminder_at(created=reopened, policy=ticket.policy, zone=SHANGHAI)
    ticket.run(reopened + 10 * H, start=reopened, step=timedelta(minutes=1))
    assert ticket.local_reminders() == ["06 11:00", "07 11:00", "07 15:00", "07 19:00"]


# --- auto-close: a resolved ticket the reporter never answered -----------------------------------


def _resolved_plan(now: datetime, resolved: datetime, quiet: str | None = None) -> ReminderPlan:
    return plan(
        now=now, status=Status.RESOLVED, due=None, reminders_sent=2, escalated=False,
        expected_by=None, policy=policy(quiet=quiet), zone=SHANGHAI, resolved_at=resolved,
        auto_close_after=72 * H,
    )  # fmt: skip


def test_a_resolved_ticket_closes_itself_after_the_delay_and_not_before() -> None:
    resolved = local(SHANGHAI, 2024, 5, 6, 10, 0)
    early = _resolved_plan(resolved + 71 * H, resolved)
    assert not early.auto_close and not (early.remind or early.escalate)
    assert early.next_at == resolved + 72 * H
    assert early.reason == "waiting for the reporter until 2024-05-09 10:00"
    due = _resolved_plan(resolved + 72 * H, resolved)
    assert due.auto_close and due.next_at is None and not (due.remind or due.escalate)
    assert due.reason == "no answer from the reporter within 72h"


def test_an_auto_close_falling_in_quiet_hours_waits_for_the_morning() -> None:
    resolved = local(SHANGHAI, 2024, 5, 6, 23, 30)  # resolved late; 72h later is quiet again
    night = _resolved_plan(resolved + 72 * H, resolved, quiet="22:00-08:00")
    assert not night.auto_close
    assert night.next_at == local(SHANGHAI, 2024, 5, 10, 8, 0)
    # planned from the resolution itself, the first look is already the morning after
    ahead = _resolved_plan(resolved, resolved, quiet="22:00-08:00")
    assert ahead.next_at == local(SHANGHAI, 2024, 5, 10, 8, 0) and not ahead.auto_close
    morning = _resolved_plan(local(SHANGHAI, 2024, 5, 10, 8, 0), resolved, quiet="22:00-08:00")
    assert morning.auto_close


def test_a_late_tick_closes_once_and_a_missing_resolution_time_counts_from_now() -> None:
    resolved = local(SHANGHAI, 2024, 5, 6, 10, 0)
    assert _resolved_plan(resolved + 30 * 24 * H, resolved).auto_close
    step = plan(
        now=resolved, status=Status.RESOLVED, due=None, reminders_sent=0, escalated=False,
        expected_by=None, policy=policy(), zone=SHANGHAI, auto_close_after=72 * H,
    )  # fmt: skip
    assert not step.auto_close and step.next_at == resolved + 72 * H


def test_without_a_delay_a_resolved_ticket_is_left_alone() -> None:
    step = plan(
        now=local(SHANGHAI, 2024, 5, 6, 10, 0), status=Status.RESOLVED, due=None,
        reminders_sent=0, escalated=False, expected_by=None, policy=policy(), zone=SHANGHAI,
    )  # fmt: skip
    assert step == ReminderPlan(False, False, None, "no reminders while resolved")


# --- 处理中 with an expected date ----------------------------------------------------------------


def _reply_in_progress(ticket: Ticket, *, now: datetime, expected_by: datetime) -> ReminderPlan:
    """The chief answers a reminder with 处理中 and a date: the integrator stores the date and
    asks the policy for the next look right away."""
    ticket.expected_by = expected_by
    ticket.next_at = now
    step = ticket.tick(now)
    assert step is not None
    return step


def test_in_progress_with_a_date_moves_the_next_reminder_to_that_date() -> None:
    assigned = local(SHANGHAI, 2024, 5, 6, 9, 0)
    ticket = Ticket(assigned, policy(escalate_after=100, quiet="22:00-08:00"), SHANGHAI)
    ticket.run(assigned + 2 * H, step=timedelta(minutes=1))
    step = _reply_in_progress(
        ticket, now=assigned + 3 * H, expected_by=local(SHANGHAI, 2024, 5, 9, 0, 0)
    )
    assert (step.remind, step.escalate) == (False, False)
    assert step.reason == "in progress, expected by 2024-05-09 00:00"
    assert step.next_at == local(SHANGHAI, 2024, 5, 9, 8, 0)  # the date, after quiet hours
    ticket.run(
        local(SHANGHAI, 2024, 5, 9, 13, 0), start=assigned + 3 * H, step=timedelta(minutes=5)
    )
    assert ticket.local_reminders() == ["06 11:00", "09 08:00", "09 12:00"]


def test_in_progress_never_moves_the_next_look_past_the_deadline() -> None:
    assigned = local(SHANGHAI, 2024, 5, 6, 9, 0)
    due = assigned + 24 * H
    ticket = Ticket(assigned, policy(escalate_after=100), SHANGHAI, due=due)
    ticket.run(assigned + 2 * H, step=timedelta(minutes=1))
    step = _reply_in_progress(ticket, now=assigned + 3 * H, expected_by=assigned + 72 * H)
    assert step.next_at == due
    ticket.run(assigned + 40 * H, start=assigned + 3 * H, step=timedelta(minutes=1))
    # Past the deadline the office is told, and reminders continue despite the date.
    assert ticket.escalations == [due]
    assert ticket.reminders == [
        assigned + 2 * H,
        due,
        due + 4 * H,
        due + 8 * H,
        due + 12 * H,
        due + 16 * H,
    ]


def test_count_escalation_waits_while_the_chief_says_in_progress() -> None:
    assigned = local(SHANGHAI, 2024, 5, 6, 9, 0)
    ticket = Ticket(assigned, policy(escalate_after=1), SHANGHAI)
    ticket.run(assigned + 2 * H, step=timedelta(minutes=1))
    _reply_in_progress(ticket, now=assigned + 3 * H, expected_by=assigned + 30 * H)
    ticket.run(assigned + 30 * H, start=assigned + 3 * H, step=timedelta(minutes=1))
    assert ticket.escalations == [assigned + 30 * H]  # the chief missed his own date


def test_an_expected_date_already_past_does_not_silence_reminders() -> None:
    now = datetime(2024, 5, 6, 4, 0, tzinfo=UTC)
    step = plan(
        now=now, status=Status.CLAIMED, due=None, reminders_sent=1, escalated=False,
        expected_by=now - H, policy=policy(), zone=SHANGHAI,
    )  # fmt: skip
    assert step.remind and step.next_at == now + 4 * H


# --- bad input ---------------------------------------------------------------------------------

NAIVE = datetime(2024, 5, 6, 9, 0)  # noqa: DTZ001 - the point of the test


@pytest.mark.parametrize("name", ["now", "due", "expected_by"])
def test_naive_datetimes_are_refused(name: str) -> None:
    args: dict[str, Any] = {
        "now": datetime(2024, 5, 6, 9, 0, tzinfo=UTC),
        "due": None,
        "expected_by": None,
        name: NAIVE,
    }
    with pytest.raises(ValueError, match=f"{name} must be an aware datetime"):
        plan(
            status=Status.CLAIMED, reminders_sent=0, escalated=False, policy=policy(),
            zone=SHANGHAI, **args,
        )  # fmt: skip


def test_naive_datetimes_are_refused_everywhere_else() -> None:
    with pytest.raises(ValueError, match="created"):
        first_reminder_at(created=NAIVE, policy=policy(), zone=SHANGHAI)
    with pytest.raises(ValueError, match="moment"):
        out_of_quiet_hours(NAIVE, quiet=NIGHT, zone=SHANGHAI)
    with pytest.raises(TypeError):
        out_of_quiet_hours("2024-05-06T09:00Z", quiet=NIGHT, zone=SHANGHAI)  # type: ignore[arg-type]


def test_a_negative_reminder_count_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        plan(
            now=datetime(2024, 5, 6, 9, 0, tzinfo=UTC), status=Status.CLAIMED, due=None,
            reminders_sent=-1, escalated=False, expected_by=None, policy=policy(), zone=SHANGHAI,
        )  # fmt: skip


def test_aware_local_times_come_back_in_utc() -> None:
    created = datetime(2024, 5, 6, 9, 0, tzinfo=SHANGHAI)
    first = first_reminder_at(created=created, policy=policy(), zone=SHANGHAI)
    assert first.tzinfo is UTC
    assert first == datetime(2024, 5, 6, 3, 0, tzinfo=UTC)


# --- properties --------------------------------------------------------------------------------

ZONES = [
    "Asia/Shanghai", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe",
    "America/Santiago", "Pacific/Apia",
]  # fmt: skip
moments = st.datetimes(
    min_value=datetime(2020, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive
    max_value=datetime(2030, 12, 31),  # noqa: DTZ001
    timezones=st.just(UTC),
)
clock = st.builds(time, st.integers(0, 23), st.integers(0, 59))
windows = st.tuples(clock, clock).filter(lambda w: w[0] != w[1]).map(lambda w: QuietHours(*w))
durations = st.integers(1, 3 * 24 * 3600).map(lambda s: timedelta(seconds=s))


def _quiet_at(moment: datetime, window: QuietHours, zone: ZoneInfo) -> bool:
    return window.contains(moment.astimezone(zone).time())


@settings(max_examples=200, deadline=None)
@given(
    now=moments,
    status=st.sampled_from(list(Status)),
    due=st.none() | durations.map(lambda d: d - timedelta(days=1)),
    expected=st.none() | durations.map(lambda d: d - timedelta(days=1)),
    sent=st.integers(0, 10),
    escalated=st.booleans(),
    every=durations,
    window=st.none() | windows,
    zone=st.sampled_from(ZONES),
)
def test_a_planned_look_is_never_in_quiet_hours_and_never_before_now(
    now: datetime,
    status: Status,
    due: timedelta | None,
    expected: timedelta | None,
    sent: int,
    escalated: bool,
    every: timedelta,
    window: QuietHours | None,
    zone: str,
) -> None:
    tz = ZoneInfo(zone)
    rules = Reminders(first_after=every, every=every, escalate_after=3, quiet_hours=window)
    step = plan(
        now=now, status=status, due=None if due is None else now + due, reminders_sent=sent,
        escalated=escalated, expected_by=None if expected is None else now + expected,
        policy=rules, zone=tz, resolved_at=now - every, auto_close_after=every * (sent % 3),
    )  # fmt: skip
    if step.auto_close:
        assert status is Status.RESOLVED and step.next_at is None
        assert window is None or not _quiet_at(now, window, tz)
    if step.next_at is None:
        assert status not in (Status.ASSIGNED, Status.CLAIMED, Status.REOPENED)
        assert not (step.remind or step.escalate)
        return
    assert step.next_at > now
    assert step.next_at.tzinfo is UTC
    if window is not None:
        assert not _quiet_at(step.next_at, window, tz)
        if step.remind or step.escalate:
            assert not _quiet_at(now, window, tz)
    assert not (escalated and step.escalate)


@settings(max_examples=200, deadline=None)
@given(moment=moments, window=windows, zone=st.sampled_from(ZONES))
def test_out_of_quiet_hours_is_the_first_moment_after_them(
    moment: datetime, window: QuietHours, zone: str
) -> None:
    tz = ZoneInfo(zone)
    end = out_of_quiet_hours(moment, quiet=window, zone=tz)
    assert end >= moment
    assert not _quiet_at(end, window, tz)
    if end > moment:
        # Every moment in between was quiet (checked a second and a minute before the end).
        for before in (end - timedelta(seconds=1), end - timedelta(minutes=1)):
            if before >= moment:
                assert _quiet_at(before, window, tz)
