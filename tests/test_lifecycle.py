"""The lifecycle, checked exhaustively over state × action × role against a written spec."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.lifecycle import (
    FINAL_STATUSES,
    Action,
    Light,
    NotPermitted,
    Role,
    Status,
    TransitionNotAllowed,
    allowed_actions,
    deadline_light,
    next_status,
)

# The spec as DESIGN.md states it, written out independently of the implementation:
# "state action -> target : roles" (R reporter, C chief, O office, S system).
SPEC = """
new       locate          -> assigned  : R S
new       assign          -> assigned  : O
new       reject          -> rejected  : O
new       mark_duplicate  -> duplicate : R O S
assigned  claim           -> claimed   : C
assigned  reject          -> rejected  : C O
assigned  reassign        -> assigned  : C O
assigned  mark_duplicate  -> duplicate : R C O S
claimed   resolve         -> resolved  : C
claimed   reject          -> rejected  : C O
claimed   reassign        -> assigned  : C O
claimed   mark_duplicate  -> duplicate : C O S
claimed   park            -> parked    : C O
reopened  resolve         -> resolved  : C
reopened  reject          -> rejected  : C O
reopened  reassign        -> assigned  : C O
reopened  mark_duplicate  -> duplicate : C O S
reopened  park            -> parked    : C O
parked    unpark          -> claimed   : C O S
resolved  confirm         -> closed    : R
resolved  dispute         -> reopened  : R
resolved  auto_close      -> closed    : S
closed    reopen          -> reopened  : O
duplicate split           -> new       : R C O
new       note            -> new       : C O
assigned  note            -> assigned  : C O
claimed   note            -> claimed   : C O
resolved  note            -> resolved  : C O
closed    note            -> closed    : C O
reopened  note            -> reopened  : C O
duplicate note            -> duplicate : C O
rejected  note            -> rejected  : C O
parked    note            -> parked    : C O
"""
ROLE_LETTERS = {"R": Role.REPORTER, "C": Role.CHIEF, "O": Role.OFFICE, "S": Role.SYSTEM}


def _spec() -> dict[tuple[Status, Action], tuple[Status, set[Role]]]:
    table = {}
    for line in SPEC.strip().splitlines():
        left, roles = line.split(":")
        state, action, _, target = left.split()
        table[(Status(state), Action(action))] = (
            Status(target),
            {ROLE_LETTERS[r] for r in roles.split()},
        )
    return table


EXPECTED = _spec()
CASES = [(s, a, r) for s in Status for a in Action for r in Role]


@pytest.mark.parametrize(("status", "action", "role"), CASES)
def test_every_state_action_role(status: Status, action: Action, role: Role) -> None:
    expected = EXPECTED.get((status, action))
    if expected is None:
        with pytest.raises(TransitionNotAllowed):
            next_status(status, action, [role])
    elif role in expected[1]:
        assert next_status(status, action, [role]) == expected[0]
    else:
        with pytest.raises(NotPermitted):
            next_status(status, action, [role])


def test_final_states_accept_nothing_but_a_reopen_a_split_or_a_note() -> None:
    way_back = {Status.CLOSED: [Action.REOPEN], Status.DUPLICATE: [Action.SPLIT]}
    for status in FINAL_STATUSES:
        assert allowed_actions(status, list(Role)) == [*way_back.get(status, []), Action.NOTE]


def test_a_note_never_changes_the_state() -> None:
    for status in Status:
        assert next_status(status, Action.NOTE, [Role.OFFICE]) is status
    with pytest.raises(NotPermitted):
        next_status(Status.CLAIMED, Action.NOTE, [Role.REPORTER])


def test_a_chief_sees_claim_then_resolve_buttons() -> None:
    assert Action.CLAIM in allowed_actions(Status.ASSIGNED, [Role.CHIEF])
    assert Action.RESOLVE not in allowed_actions(Status.ASSIGNED, [Role.CHIEF])
    assert Action.RESOLVE in allowed_actions(Status.CLAIMED, [Role.CHIEF])


def test_no_roles_may_do_nothing() -> None:
    with pytest.raises(NotPermitted):
        next_status(Status.ASSIGNED, Action.CLAIM, [])


@given(
    st.lists(st.sampled_from(list(Action)), max_size=30),
    st.sets(st.sampled_from(list(Role)), min_size=1),
)
def test_any_sequence_stays_in_the_table(actions: list[Action], roles: set[Role]) -> None:
    status = Status.NEW
    for action in actions:
        try:
            status = next_status(status, action, roles)
        except (TransitionNotAllowed, NotPermitted):
            continue
        assert status in Status


START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("elapsed_hours", "light"),
    [(0, Light.GREEN), (19, Light.GREEN), (19.2, Light.YELLOW), (23.9, Light.YELLOW),
     (24, Light.RED), (100, Light.RED)],
)
def test_traffic_light_over_a_24h_deadline(elapsed_hours: float, light: Light) -> None:
    now = START + timedelta(hours=elapsed_hours)
    assert deadline_light(started=START, due=START + timedelta(hours=24), now=now) is light
