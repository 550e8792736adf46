"""Webhook endpoints through the API: owners manage them, secrets rotate with an overlap,
addresses that are not public are refused, and the OpenAPI document lists every payload."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from service import outbound
from service.app import create_app
from service.domain.webhooks import EVENT_TYPES
from service.settings import Settings
from tests.conftest import World
from tests.service.test_error_shape import assert_error


def hooks(slug: str, path: str = "") -> str:
    return f"/api/communities/{slug}/webhooks{path}"


def test_owner_manages_an_endpoint(world: World) -> None:
    """Create (secret shown), list (no secret), change types, disable, enable, delete."""
    owner = world.admin()
    slug = world.community(owner)
    made = owner.post(hooks(slug), json={"url": "https://93.184.215.14/kumpul",
                                         "event_types": ["reel.published", "clip.approved"],
                                         "description": "CRM sync"})
    assert made.status_code == 201, made.text
    endpoint = made.json()
    assert endpoint["secret"].startswith("whsec_") and endpoint["enabled"] is True
    assert endpoint["event_types"] == ["clip.approved", "reel.published"]  # catalog order

    listed = owner.get(hooks(slug)).json()
    assert [e["id"] for e in listed["endpoints"]] == [endpoint["id"]]
    assert "secret" not in listed["endpoints"][0]
    assert listed["event_types"] == list(EVENT_TYPES)

    changed = owner.patch(hooks(slug, f"/{endpoint['id']}"),
                          json={"event_types": ["live.started"], "enabled": False})
    assert changed.status_code == 200, changed.text
    assert changed.json()["event_types"] == ["live.started"]
    assert changed.json()["enabled"] is False
    assert changed.json()["disabled_reason"] == "owner"
    enabled = owner.patch(hooks(slug, f"/{endpoint['id']}"), json={"enabled": True}).json()
    assert enabled["enabled"] is True and enabled["disabled_reason"] is None

    assert_error(owner.patch(hooks(slug, f"/{endpoint['id']}"),
                             json={"event_types": ["clip.eaten"]}), 422, "invalid_event_types")
    assert_error(owner.post(hooks(slug), json={"url": "https://93.184.215.14/",
                                               "event_types": []}), 422, "invalid_event_types")
    assert owner.delete(hooks(slug, f"/{endpoint['id']}")).status_code == 204
    assert_error(owner.get(hooks(slug, f"/{endpoint['id']}")), 404, "webhook_not_found")
    actions = [e["action"] for e in owner.get(f"/api/communities/{slug}/audit").json()["events"]]
    assert {"webhook.created", "webhook.changed", "webhook.deleted"} <= set(actions)


def test_only_owners_manage_endpoints(world: World) -> None:
    owner = world.admin()
    slug = world.community(owner)
    moderator = world.join(owner, slug, "moderator")
    outsider = world.admin("Other Owner")
    world.community(outsider)
    assert_error(moderator.get(hooks(slug)), 403, "role_forbidden")
    assert_error(outsider.get(hooks(slug)), 404, "community_not_found")


def test_rotation_keeps_the_old_secret_valid_for_a_while(world: World) -> None:
    """The new secret is shown; the old one still signs until previous_secret_expires_at."""
    owner = world.admin()
    slug = world.community(owner)
    endpoint = owner.post(hooks(slug), json={"url": "https://93.184.215.14/",
                                             "event_types": ["live.ended"]}).json()
    rotated = owner.post(hooks(slug, f"/{endpoint['id']}/rotate-secret"))
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["secret"] != endpoint["secret"]
    assert rotated.json()["secret"].startswith("whsec_")
    assert rotated.json()["previous_secret_expires_at"] is not None
    assert owner.get(hooks(slug, f"/{endpoint['id']}")).json()["secret"] == \
        rotated.json()["secret"]


@pytest.mark.parametrize("url, address", [
    ("http://127.0.0.1:8000/hook", "127.0.0.1"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
    ("http://[fd00:ec2::254]/", "fd00:ec2::254"),
    ("http://[::ffff:127.0.0.1]/", "127.0.0.1"),
    ("http://localhost:9/", "127.0.0.1"),
    ("http://10.1.2.3/", "10.1.2.3"),
    ("http://100.64.0.1/", "100.64.0.1"),
    ("http://0.0.0.0/", "0.0.0.0"),  # noqa: S104
])
def test_addresses_that_are_not_public_are_refused(world: World, url: str,
                                                   address: str) -> None:
    """At creation, a URL whose host resolves to a non-public address is a clear 422."""
    owner = world.admin()
    slug = world.community(owner)
    error = assert_error(owner.post(hooks(slug), json={"url": url,
                                                       "event_types": ["live.ended"]}),
                         422, "webhook_url_refused")
    assert "not a public address" in error["message"]
    assert address.split(":")[0] in error["message"] or address in error["message"]
    assert owner.get(hooks(slug)).json()["endpoints"] == []


@pytest.mark.parametrize("url", ["ftp://93.184.215.14/", "https://user:pw@93.184.215.14/",
                                 "not a url", "https://no-such-host.invalid/"])
def test_malformed_urls_are_refused(world: World, url: str) -> None:
    owner = world.admin()
    slug = world.community(owner)
    assert_error(owner.post(hooks(slug), json={"url": url, "event_types": ["live.ended"]}),
                 422, "webhook_url_refused")


def test_the_allow_setting_lets_named_hosts_in(settings: Settings, tmp_path: Path) -> None:
    """With KUMPUL_WEBHOOK_ALLOW_HOSTS=127.0.0.1 the operator's own receiver is accepted;
    169.254.169.254 still is not."""
    allowed = settings.replace(webhook_allow_hosts=("127.0.0.1",))
    with TestClient(create_app(allowed)) as client:
        world = World(client, allowed)
        owner = world.admin()
        slug = world.community(owner)
        made = owner.post(hooks(slug), json={"url": "http://127.0.0.1:9/hook",
                                             "event_types": ["live.ended"]})
        assert made.status_code == 201, made.text
        assert_error(owner.post(hooks(slug), json={"url": "http://169.254.169.254/",
                                                   "event_types": ["live.ended"]}),
                     422, "webhook_url_refused")


def test_openapi_lists_every_webhook_payload(client: TestClient) -> None:
    """OpenAPI 3.1's `webhooks` section has each event type with its payload schema and
    the Standard Webhooks headers."""
    document = client.get("/api/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    assert sorted(document["webhooks"]) == sorted(EVENT_TYPES)
    schemas = document["components"]["schemas"]
    for event_type, item in document["webhooks"].items():
        operation = item["post"]
        assert {p["name"] for p in operation["parameters"]} == {
            "webhook-id", "webhook-timestamp", "webhook-signature"}
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        schema = schemas[ref.rsplit("/", 1)[1]]
        assert event_type in schema["properties"]["type"]["enum"]
        assert {"type", "timestamp", "data"} <= set(schema["required"])
    assert "/api/communities/{slug}/webhooks" in document["paths"]


@pytest.mark.parametrize("address, public", [
    ("93.184.215.14", True), ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", True),
    ("127.0.0.1", False), ("10.0.0.1", False), ("172.16.5.4", False), ("192.168.1.1", False),
    ("169.254.169.254", False), ("169.254.1.1", False), ("100.64.0.1", False),
    ("100.127.255.254", False), ("224.0.0.1", False), ("239.255.255.250", False),
    ("240.0.0.1", False), ("255.255.255.255", False), ("0.0.0.0", False),  # noqa: S104
    ("198.18.0.1", False), ("192.0.2.1", False), ("::1", False), ("::", False),
    ("fe80::1", False), ("fc00::1", False), ("fd00:ec2::254", False), ("ff02::1", False),
    ("::ffff:127.0.0.1", False), ("::ffff:169.254.169.254", False), ("::ffff:8.8.8.8", True),
    ("64:ff9b::a9fe:a9fe", False), ("2002:7f00:1::", False), ("::127.0.0.1", False),
    ("2001:db8::1", False),
])
def test_public_addresses(address: str, public: bool) -> None:
    assert outbound.is_public(ipaddress.ip_address(address)) is public


def test_delivery_connects_to_the_checked_address(monkeypatch: pytest.MonkeyPatch) -> None:
    """The host is resolved once; a second lookup (DNS rebinding) is never made."""
    answers = iter([[(2, 1, 6, "", ("93.184.215.14", 443))],
                    [(2, 1, 6, "", ("127.0.0.1", 443))]])
    monkeypatch.setattr("socket.getaddrinfo", lambda *a, **k: next(answers))
    dest = outbound.destination("https://rebind.example/hook")
    assert dest.address == "93.184.215.14" and dest.host == "rebind.example"
    with pytest.raises(outbound.Refused, match=r"127\.0\.0\.1"):
        outbound.destination("https://rebind.example/hook")


def test_one_private_answer_among_public_ones_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("socket.getaddrinfo", lambda *a, **k: [
        (2, 1, 6, "", ("93.184.215.14", 80)), (2, 1, 6, "", ("10.0.0.5", 80))])
    with pytest.raises(outbound.Refused, match=r"10\.0\.0\.5"):
        outbound.destination("http://mixed.example/")


def test_owner_manages_endpoints_on_the_page(world: World) -> None:
    """The Webhooks page: add (the secret is shown), choose events, disable, rotate, delete;
    a refused address is shown with its reason."""
    owner = world.admin()
    slug = world.community(owner)
    page = f"/c/{slug}/admin/webhooks"
    assert "Manage webhooks" in owner.get(f"/c/{slug}/admin").text
    refused = owner.post(page, data={"url": "http://169.254.169.254/",
                                     "event_types": ["live.ended"]})
    assert refused.status_code == 422 and "not a public address" in refused.text
    made = owner.post(page, data={"url": "https://93.184.215.14/in", "description": "CRM",
                                  "event_types": ["live.ended", "reel.published"]})
    assert made.status_code == 200 and "whsec_" in made.text
    [endpoint] = owner.get(hooks(slug)).json()["endpoints"]
    assert endpoint["event_types"] == ["reel.published", "live.ended"]
    base = f"{page}/{endpoint['id']}"
    assert owner.post(f"{base}/types", data={"event_types": ["clip.approved"]},
                      follow_redirects=False).status_code == 303
    assert owner.post(f"{base}/switch", data={"enabled": "0"},
                      follow_redirects=False).status_code == 303
    shown = owner.get(hooks(slug, f"/{endpoint['id']}")).json()
    assert shown["event_types"] == ["clip.approved"] and shown["enabled"] is False
    assert "Disabled: nothing is sent." in owner.get(page).text
    rotated = owner.post(f"{base}/rotate", data={})
    assert rotated.status_code == 200
    assert owner.get(hooks(slug, f"/{endpoint['id']}")).json()["secret"] in rotated.text
    assert owner.post(f"{base}/delete", data={}, follow_redirects=False).status_code == 303
    assert owner.get(hooks(slug)).json()["endpoints"] == []
