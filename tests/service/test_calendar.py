"""Calendar files (RFC 5545), parsed back with the `icalendar` package: a session's .ics with
its community's zone (TZID and a VTIMEZONE), a reminder, escaped text and folded CRLF lines;
and a member's feed behind a secret URL that stops working when revoked."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
from starlette.testclient import TestClient

from service.domain import calendar
from tests.conftest import World

TITLE = "Run, talk; and \\ laugh: a very long title to make the summary line fold twice"


def lines_ok(body: bytes) -> None:
    """CRLF everywhere, no line over 75 octets, continuation lines begin with a space."""
    assert body.endswith(b"\r\n") and b"\n" not in body.replace(b"\r\n", b"")
    for line in body.split(b"\r\n")[:-1]:
        assert len(line) <= 75, line


def test_a_sessions_ics_is_valid_and_in_the_communitys_zone(world: World,
                                                           client: TestClient) -> None:
    """One VEVENT with UID, DTSTAMP, DTSTART in the community's zone, SUMMARY, URL and an
    alarm an hour before; text survives escaping and folding."""
    owner = world.admin("Olu Owner")
    slug = world.community(owner)
    assert owner.patch(f"/api/communities/{slug}",
                       json={"time_zone": "Asia/Makassar"}).status_code == 200
    member = world.join(owner, slug)
    starts = datetime(2030, 3, 9, 11, 0, tzinfo=UTC)
    made = owner.post(f"/api/communities/{slug}/live", json={
        "title": TITLE, "description": "Bring water,\nand friends.",
        "starts_at": starts.isoformat()})
    assert made.status_code == 201, made.text
    session_id = made.json()["id"]
    got = member.get(f"/c/{slug}/live/{session_id}/calendar.ics")
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/calendar")
    assert "attachment" in got.headers["content-disposition"]
    lines_ok(got.content)
    assert re.search(rb"\r\n [^\r\n]", got.content)  # the long summary was folded
    cal: Any = icalendar.Calendar.from_ical(got.content)
    assert cal["VERSION"] == "2.0" and cal["PRODID"]
    (zone,) = cal.walk("VTIMEZONE")
    assert zone["TZID"] == "Asia/Makassar"
    (event,) = cal.walk("VEVENT")
    assert event["UID"] == f"live-{session_id}@testserver"
    assert event["DTSTAMP"].dt.tzinfo is not None
    start = event["DTSTART"]
    assert start.params["TZID"] == "Asia/Makassar"
    assert start.dt.replace(tzinfo=None) == datetime(2030, 3, 9, 19, 0)  # 19.00 WITA
    assert str(event["SUMMARY"]).startswith(TITLE)
    assert str(event["URL"]) == f"http://testserver/c/{slug}/live/{session_id}"
    assert "Bring water,\nand friends." in str(event["DESCRIPTION"])
    (alarm,) = event.walk("VALARM")
    assert alarm["ACTION"] == "DISPLAY" and alarm["TRIGGER"].dt == timedelta(hours=-1)
    assert world.admin("Other").get(f"/c/{slug}/live/{session_id}/calendar.ics") \
        .status_code == 404  # outsiders learn nothing


def test_a_zone_with_daylight_time_gets_its_changes() -> None:
    """For a zone that changes its clocks, the VTIMEZONE lists the year's changes and a
    calendar reading it lands on the same instant."""
    lines = calendar.vtimezone("Europe/Berlin", [2030])
    body = "\r\n".join(["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//t//t//EN", *lines,
                        "BEGIN:VEVENT", "UID:x", "DTSTAMP:20300101T000000Z",
                        "DTSTART;TZID=Europe/Berlin:20300701T180000", "END:VEVENT",
                        "END:VCALENDAR", ""])
    cal: Any = icalendar.Calendar.from_ical(body)
    assert {c.name for c in cal.walk("VTIMEZONE")[0].subcomponents} == {"STANDARD", "DAYLIGHT"}
    start = cal.walk("VEVENT")[0]["DTSTART"].dt
    assert start.astimezone(UTC) == datetime(2030, 7, 1, 18, 0,
                                             tzinfo=ZoneInfo("Europe/Berlin")).astimezone(UTC)
    assert calendar.fold("é" * 60).split("\r\n")[0].encode().__len__() <= 75


def test_a_members_feed_is_secret_and_revocable(world: World, client: TestClient) -> None:
    """The account page makes the feed URL; the feed lists the member's sessions without a
    login; a new address ends the old one, and stopping ends both."""
    owner = world.admin("Olu Owner")
    slug = world.community(owner)
    member = world.join(owner, slug)
    for title in ("First run", "Second run"):
        owner.post(f"/api/communities/{slug}/live", json={
            "title": title, "starts_at": (datetime.now(UTC) + timedelta(days=2)).isoformat()})
    assert "/calendar/" not in member.get("/account").text
    assert member.post("/account/calendar", data={"action": "start",
                                                  "csrf_token": member.csrf}).status_code == 200
    page = member.get("/account").text
    found = re.search(r'value="http://testserver(/calendar/[^"]+\.ics)"', page)
    assert found
    feed = found.group(1)
    with TestClient(client.app) as stranger:
        got = stranger.get(feed)
        assert got.status_code == 200
        lines_ok(got.content)
        parsed: Any = icalendar.Calendar.from_ical(got.content)
        events = parsed.walk("VEVENT")
        assert sorted(str(e["SUMMARY"]).split(" (")[0] for e in events) == [
            "First run", "Second run"]
        assert stranger.get(feed.replace(".ics", "0.ics")).status_code == 404
        member.post("/account/calendar", data={"action": "renew", "csrf_token": member.csrf})
        assert stranger.get(feed).status_code == 404  # the old address stopped
        renewed = re.search(r'value="http://testserver(/calendar/[^"]+\.ics)"',
                            member.get("/account").text)
        assert renewed and stranger.get(renewed.group(1)).status_code == 200
        member.post("/account/calendar", data={"action": "stop", "csrf_token": member.csrf})
        assert stranger.get(renewed.group(1)).status_code == 404
    assert "/calendar/" not in member.get("/account").text
