"""What counts as proof of a site visit, and the reason when something does not."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from escalation.chain import ChainSnapshot

EARTH_RADIUS_M = 6_371_000.0


class EvidenceKind(StrEnum):
    PHOTO = "photo"
    LOCATION = "location"
    VENUE = "venue"


class Refusal(StrEnum):
    """Why a photo or location does not stop the clock; each is recorded as an event."""

    FORWARDED = "forwarded"
    REUSED_PHOTO = "reused_photo"
    OUTSIDE_SITE = "outside_site"
    VENUE = "venue"
    NOT_IN_CHAIN = "not_in_chain"


@dataclass(frozen=True, slots=True)
class Site:
    lat: float
    lon: float
    radius_m: float


@dataclass(frozen=True, slots=True)
class EvidenceInput:
    """A photo or a location as the core sees it, with nothing of Telegram left."""

    kind: EvidenceKind
    user_id: int
    username: str | None = None
    forwarded: bool = False
    file_unique_id: str | None = None
    lat: float | None = None
    lon: float | None = None
    accuracy_m: float | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    accepted: bool
    refusal: Refusal | None = None
    distance_m: float | None = None


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


def within_site(site: Site, lat: float, lon: float, accuracy_m: float | None) -> tuple[bool, float]:
    """Inside the fence, giving the phone the benefit of its stated accuracy.

    The benefit is capped at the fence's own radius, so a fix that could be anywhere in the city
    does not count as being on site.
    """
    distance = haversine_m(site.lat, site.lon, lat, lon)
    slack = min(accuracy_m or 0.0, site.radius_m)
    return distance <= site.radius_m + slack, distance


def judge_evidence(
    evidence: EvidenceInput,
    *,
    chain: ChainSnapshot,
    level: int,
    anyone: bool,
    site: Site | None,
    photo_used_before: bool,
) -> Verdict:
    """Accept a visit only from fresh, first-hand media of a chain member, inside the fence."""
    if evidence.forwarded:
        return Verdict(False, Refusal.FORWARDED)
    if evidence.kind is EvidenceKind.VENUE:
        return Verdict(False, Refusal.VENUE)
    if evidence.kind is EvidenceKind.PHOTO and photo_used_before:
        return Verdict(False, Refusal.REUSED_PHOTO)
    distance = None
    if evidence.kind is EvidenceKind.LOCATION and site is not None:
        if evidence.lat is None or evidence.lon is None:
            return Verdict(False, Refusal.OUTSIDE_SITE)
        inside, distance = within_site(site, evidence.lat, evidence.lon, evidence.accuracy_m)
        if not inside:
            return Verdict(False, Refusal.OUTSIDE_SITE, distance)
    if not anyone and not chain.includes(evidence.user_id, evidence.username, up_to=level):
        return Verdict(False, Refusal.NOT_IN_CHAIN, distance)
    return Verdict(True, None, distance)
