"""Who may do what: the one table for commands, beside the lifecycle's table for ticket actions.

A person's *standing* is what they are in the district (a stranger, a captain, a station's
chief or deputy, the street office); the command table says which standings may use each
command. What someone may do *to a ticket* depends on their role towards that ticket
(its reporter, its station's chief, the office) and its state: that is
``bot.lifecycle.TRANSITIONS``. Handlers check both on the server, never trusting a button.
"""

from __future__ import annotations

from enum import StrEnum

from bot.deployment import Deployment
from storage.models import Person

OFFICE_ROLES = ("office", "admin")  # Person.role values that act as the street office


class Standing(StrEnum):
    STRANGER = "stranger"  # has not joined (reports anyway where intake is open)
    CAPTAIN = "captain"  # a building captain (楼院长) who joined
    CHIEF = "chief"  # a station chief named in the deployment file
    DEPUTY = "deputy"  # joined as a chief of a station the deployment gives to someone else
    OFFICE = "office"  # the street office (街道), admins included


class Feature(StrEnum):
    """Commands and what they open; ticket actions are in bot.lifecycle."""

    HELP = "help"
    WHOAMI = "whoami"
    LANG = "lang"
    REPORT = "report"  # a photo report in a group, or the guided /report
    MY = "my"  # my own tickets
    TICKETS = "tickets"  # the station's desk
    MERGE = "merge"  # /merge and /unmerge (the tickets' own rules apply too)
    OPEN = "open"  # every station's open tickets
    INVITE = "invite"  # invitation links
    DIGEST = "digest"  # the weekly digest: a chief their station's, the office any


EVERYONE = frozenset(Standing)
MEMBERS = EVERYONE - {Standing.STRANGER}
CHIEFS = frozenset({Standing.CHIEF, Standing.DEPUTY})

FEATURES: dict[Feature, frozenset[Standing]] = {
    Feature.HELP: EVERYONE,
    Feature.WHOAMI: EVERYONE,
    Feature.LANG: EVERYONE,
    Feature.REPORT: MEMBERS,  # and strangers, where the deployment's intake is open
    Feature.MY: EVERYONE,
    Feature.TICKETS: CHIEFS,
    Feature.MERGE: CHIEFS | {Standing.OFFICE},
    Feature.OPEN: frozenset({Standing.OFFICE}),
    Feature.INVITE: frozenset({Standing.OFFICE}),
    Feature.DIGEST: CHIEFS | {Standing.OFFICE},
}


def standing_of(person: Person | None, telegram_id: int, deployment: Deployment) -> Standing:
    """What someone is in the district: the deployment's chiefs first, then the person row."""
    if deployment.stations_led_by(telegram_id):
        return Standing.CHIEF
    if person is None:
        return Standing.STRANGER
    if person.role in OFFICE_ROLES:
        return Standing.OFFICE
    if person.joined_at is None:
        return Standing.STRANGER  # met in a group (intake: open), never invited
    return Standing.DEPUTY if person.role == "chief" else Standing.CAPTAIN


def may(feature: Feature, standing: Standing, deployment: Deployment) -> bool:
    if feature is Feature.REPORT and deployment.intake == "open":
        return True
    return standing in FEATURES[feature]
