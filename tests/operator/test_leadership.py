"""The leadership adapter reads kopf's peering decisions; these checks fail on a kopf upgrade
that changes the words before a real two-replica run (e2e/test_peering.py) would."""

from __future__ import annotations

import inspect
import logging

import kopf._core.engines.peering as kopf_peering

from budai_operator import leadership


def test_kopf_still_announces_its_decisions_in_the_words_we_follow() -> None:
    source = inspect.getsource(kopf_peering)
    assert kopf_peering.__name__ == leadership.PEERING_LOGGER
    for word in ("Pausing operations in favour of", "Pausing all operators", "Resuming operations"):
        assert f'logger.info(f"{word}' in source or f'logger.warning(f"{word}' in source, word
    assert leadership.decision("Pausing operations in favour of [peer]") is False
    assert leadership.decision("Pausing all operators, including self: []") is False
    assert leadership.decision("Resuming operations after the pause.") is True
    assert leadership.decision("Possibly conflicting operators with the same priority") is None


def test_follow_reports_each_decision_once_and_replaces_an_earlier_follower() -> None:
    seen: list[tuple[str, bool]] = []
    leadership.follow(lambda active: seen.append(("old", active)))
    leadership.follow(lambda active: seen.append(("new", active)))
    logger = logging.getLogger(leadership.PEERING_LOGGER)
    logger.info("Pausing operations in favour of %s.", ["peer"])
    logger.warning("Possibly conflicting operators with the same priority: []")
    logger.info("Resuming operations after the pause.")
    assert seen == [("new", False), ("new", True)]
