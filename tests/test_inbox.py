"""The inbox's note of updates this process has just recorded (bot.middlewares.RecordedUpdates):
handling them skips the database's "handled before?" question, once."""

from __future__ import annotations

from bot.middlewares import RecordedUpdates


def test_an_update_recorded_here_is_let_through_without_asking_once() -> None:
    recorded = RecordedUpdates()
    recorded.add([7, 8])
    assert recorded.take(7)
    assert not recorded.take(7)  # a second arrival is asked about, like any other
    assert not recorded.take(9)  # never recorded here
    assert recorded.take(8)


def test_past_its_limit_the_oldest_are_forgotten_and_asked_about_again() -> None:
    recorded = RecordedUpdates(limit=3)
    recorded.add(range(1, 6))
    assert [n for n in range(1, 6) if recorded.take(n)] == [3, 4, 5]
