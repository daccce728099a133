"""aiogram routers only; one per feature, catch-alls last."""

from aiogram import Router

from handlers import (
    chief_desk,
    common,
    digest,
    fallback,
    feedback,
    group_intake,
    guided_report,
    office,
    people,
)


def get_routers() -> list[Router]:
    # Conversation states first (a chief's after-photo, a reporter's comment), then intake,
    # then the catch-alls.
    return [
        people.router(),  # before common: /start with an invitation token is joining
        common.router(),
        guided_report.router(),  # before the chief's questions: /report starts a form
        chief_desk.router(),
        feedback.router(),
        office.router(),
        digest.router(),
        group_intake.router(),
        fallback.router(),
    ]
