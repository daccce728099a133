"""Placing a report: words or a point become a place on a station's grid, with a confidence.

The gazetteer answers first (offline, instant); online providers only get an address the
gazetteer does not know; an unsure match is kept as a guess to ask the captain about; a
point just outside every grid goes to the nearest station within the configured distance.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from bot.geocoding import GeocoderChain, ProviderFailure
from bot.grids import Grids
from bot.intake import parse_caption
from bot.locating import Gazetteer, Locator, Place


@dataclass(frozen=True)
class Finding:
    place: Place | None  # trusted and routed; its station is None outside every grid
    guess: Place | None = None  # the best unsure match, to ask the captain about
    failures: tuple[ProviderFailure, ...] = ()  # providers that could not answer
    span: str | None = None  # the address as the captain wrote it
    routed: str = "inside"  # inside | nearest | outside
    distance_m: float | None = None  # to the nearest station's grid, when routed there


class Placer:
    def __init__(
        self,
        *,
        grids: Grids,
        geocoders: GeocoderChain | None,
        nearest_within_m: float,
        min_confidence: float,
    ) -> None:
        self.grids = grids
        self.geocoders = geocoders
        self.nearest_within_m = nearest_within_m
        self.min_confidence = min_confidence
        self.locator: Locator | None = None

    def use_gazetteer(self, gazetteer: Gazetteer) -> None:
        """Called at start, once the gazetteer is loaded from the database."""
        self.locator = Locator(gazetteer, self.grids, min_confidence=self.min_confidence)
        if self.geocoders is not None:
            self.geocoders.use_gazetteer(gazetteer)

    def _gazetteer(self) -> Locator:
        if self.locator is None:
            raise RuntimeError("the gazetteer is not loaded yet (Placer.use_gazetteer)")
        return self.locator

    async def from_text(self, text: str) -> Finding:
        """Where a caption (or a reply) says the problem is."""
        span = parse_caption(text).address
        gazetteer = self._gazetteer().gazetteer
        best = None
        for query in (span, text) if span else (text,):
            match = gazetteer.match(query)
            if match is None:
                continue
            if match.score >= self.min_confidence:
                return self._routed(match.place, span=span)
            if best is None or match.score > best.score:
                best = match
        failures: tuple[ProviderFailure, ...] = ()
        if span and self.geocoders is not None:
            # Only an address goes to an online provider: never a captain's chatter.
            outcome = await self.geocoders.geocode(span)
            failures = tuple(outcome.failures)
            if outcome.place is not None and (outcome.confidence or 0) >= self.min_confidence:
                return self._routed(outcome.place, span=span, failures=failures)
        return Finding(None, guess=best.place if best else None, failures=failures, span=span)

    def suggestions(self, text: str, *, limit: int = 5) -> list[Place]:
        """The gazetteer's best guesses for a typed address, best first, with their stations:
        for the captain to pick from when none is sure enough to act on."""
        explained = self._gazetteer().explain(text, limit=limit)
        return [match.place for match in explained.candidates]

    def confirmed(self, place: Place) -> Finding:
        """A place the captain has confirmed (picked, or accepted in a form), routed now."""
        return self._routed(place)

    async def from_point(
        self, lat: float, lon: float, *, source: str, label: str | None = None
    ) -> Finding:
        """A shared location, a venue or a photo's GPS; nothing for a point not on Earth."""
        try:
            place = self._gazetteer().locate_point(lat, lon, label=label)
        except ValueError:
            return Finding(None)
        place = replace(place, source=source, station_key=None)
        if label is None and self.geocoders is not None:
            nearby = await self.geocoders.reverse(lat, lon)
            if nearby:
                place = replace(place, address=nearby, how="near")
        return self._routed(place)

    def _routed(
        self, place: Place, *, span: str | None = None,
        failures: tuple[ProviderFailure, ...] = (),
    ) -> Finding:
        if place.station_key is not None and place.station_key in self.grids:
            return Finding(place, span=span, failures=failures)
        routing = self.grids.route(place.lat, place.lon, within_m=self.nearest_within_m)
        return Finding(
            replace(place, station_key=routing.station_key), span=span, failures=failures,
            routed=routing.how, distance_m=routing.distance_m,
        )
