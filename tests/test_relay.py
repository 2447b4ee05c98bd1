"""Relays end to end: events accepted by rdevents (on each backend) reach an upstream that is
another rdevents, speaking RD's events API, OAuth and 429s, as RD Station would: in each
contact's order, within the budget, with tokens refreshed, limits obeyed and refusals kept as
dead letters that a person can replay."""

from __future__ import annotations

from conftest import conversion, event
from rdevents import oauth
from rdevents.tokens import hash_secret
from relaying import (
    FAST,
    create_relay,
    dead_letters,
    new_email,
    relay_of,
    relays_command,
    stays,
    upstream_events,
    wait_for_relay,
    wait_for_upstream,
)

CONTRACT = {"uuid", "account", "url", "state", "backlog", "sent", "dead", "last_error"}


def test_events_reach_the_upstream_as_they_were_accepted(own_server, upstream):
    up_account, up_token = upstream.new_account()
    server = own_server(**FAST)
    account_id, token = server.new_account()
    relay = create_relay(server, account_id, upstream.url, up_token)
    a, b = new_email("a"), new_email("b")
    with server.client(token) as api:
        assert api.send_batch([
            conversion(a, not_in_the_catalogue="kept"), conversion(b),
            event("OPPORTUNITY", email=a, funnel_name="default")]).status_code == 200
        assert api.send_event(event("SALE", email=a, funnel_name="default",
                                    value=10.5)).status_code == 200
        assert api.post("/platform/events", json=conversion(b, cf_plan="gold"),
                        params={"event_type": "conversion"}).status_code == 200
    stored = wait_for_upstream(upstream, up_account, 5)
    assert [t for t, p in stored if p["email"] == a] == ["CONVERSION", "OPPORTUNITY", "SALE"]
    assert [p.get("cf_plan") for t, p in stored if p["email"] == b] == [None, "gold"]
    first = next(p for t, p in stored if p["email"] == a and t == "CONVERSION")
    assert first == conversion(a, not_in_the_catalogue="kept")["payload"]  # as it arrived
    # The upstream made the contacts: the OPPORTUNITY found its CONVERSION's.
    with upstream.client(up_token) as up:
        assert up.contact(a).json()["email"] == a
    found = wait_for_relay(server, relay, lambda r: r.sent == 5)
    assert (found.state, found.backlog, found.dead, found.lag_seconds, found.last_error,
            found.retried) == ("active", 0, 0, None, None, 0)
    assert found.last_success_at is not None and found.auth == "token"
    # The extension API shows the account its relays, and no other account's.
    _, other_token = server.new_account()
    with server.client(token) as api, server.client(other_token) as other:
        listed = api.get("/rdevents/v1/relays").json()["relays"]
        assert [r["uuid"] for r in listed] == [relay] and CONTRACT <= set(listed[0])
        assert api.get(f"/rdevents/v1/relays/{relay}").json() == listed[0]
        assert other.get("/rdevents/v1/relays").json() == {"relays": []}
        assert other.get(f"/rdevents/v1/relays/{relay}").status_code == 404
        assert api.get("/readyz").json()["relays"][0]["uuid"] == relay


def test_an_oauth_relay_refreshes_a_revoked_token_and_pauses_when_refresh_is_refused(
        own_server, upstream):
    up_account, _ = upstream.new_account()
    client_id, client_secret = upstream.call(oauth.create_app(upstream.store, up_account,
                                                              "https://app.example/callback"))

    def refresh_token() -> str:
        """What an administrator's consent gives the app: a code, exchanged for tokens."""
        app = upstream.call(upstream.store.find_app(client_id))
        code = upstream.call(oauth.issue_code(upstream.store, app))
        return upstream.call(oauth.exchange_code(upstream.store, app, code)).refresh_token

    first_refresh = refresh_token()
    server = own_server(**FAST)
    account_id, token = server.new_account()
    relay = create_relay(server, account_id, upstream.url, client_id=client_id,
                         client_secret=client_secret, refresh_token=first_refresh)

    def access_token() -> str:
        return server.call(server.store.fetch("SELECT access_token FROM relays WHERE uuid = ?",
                                              (relay,)))[0][0]

    with server.client(token) as api:
        # No access token yet: the relay gets one with its refresh token.
        assert api.send_event(conversion(new_email())).status_code == 200
        wait_for_upstream(upstream, up_account, 1)
        obtained = access_token()
        assert obtained
        # Revoked upstream (or expired): refreshed once, and the event sent again.
        assert upstream.call(upstream.store.revoke_token(hash_secret(obtained)))
        assert api.send_event(conversion(new_email())).status_code == 200
        wait_for_upstream(upstream, up_account, 2)
        assert access_token() not in (obtained, None)
        # The app's authorization revoked: the refresh is refused, the relay pauses, and the
        # event waits.
        upstream.call(oauth.revoke(upstream.store, first_refresh, "refresh_token"))
        assert api.send_event(conversion(new_email())).status_code == 200
        paused = wait_for_relay(server, relay, lambda r: r.state == "paused")
        assert "INVALID_REFRESH_TOKEN" in paused.paused_reason
        assert f"rdevents relays update {relay} --refresh-token" in paused.paused_reason
        assert (paused.backlog, paused.dead, paused.paused_until) == (1, 0, None)
        assert len(upstream_events(upstream, up_account)) == 2
    # A person gives it a new refresh token and resumes it: the event goes.
    relays_command(server, "update", relay, "--refresh-token", refresh_token())
    relays_command(server, "resume", relay)
    wait_for_upstream(upstream, up_account, 3)
    resumed = wait_for_relay(server, relay, lambda r: r.backlog == 0)
    assert (resumed.state, resumed.sent, resumed.paused_reason) == ("active", 3, None)


def test_the_budget_keeps_the_relay_within_the_upstreams_limit(own_server, upstream):
    up_account, up_token = upstream.new_account()
    upstream.call(upstream.store.set_account_limits(up_account, None, 5, None))
    server = own_server(**FAST)
    account_id, token = server.new_account()
    relay = create_relay(server, account_id, upstream.url, up_token, events_per_minute=5)
    with server.client(token) as api:
        for _ in range(3):
            assert api.send_batch([conversion(new_email()) for _ in range(3)]).status_code == 200
    wait_for_upstream(upstream, up_account, 5)
    assert stays(lambda: len(upstream_events(upstream, up_account)) == 5, 1.0)
    held = relay_of(server, relay)
    # Nothing refused: no 429 was ever answered.
    assert (held.state, held.sent, held.backlog, held.retried, held.last_error) == (
        "active", 5, 4, 0, None)
    assert held.lag_seconds is not None and held.lag_seconds > 0


def test_the_upstreams_account_limit_pauses_the_relay_until_it_ends(own_server,
                                                                     upstream):
    up_account, up_token = upstream.new_account()
    upstream.call(upstream.store.set_account_limits(up_account, None, 3, None))
    server = own_server(**FAST)
    account_id, token = server.new_account()
    relay = create_relay(server, account_id, upstream.url, up_token)  # no budget of its own
    with server.client(token) as api:
        assert api.send_batch([conversion(new_email()) for _ in range(3)]).status_code == 200
        wait_for_upstream(upstream, up_account, 3)
        assert api.send_batch([conversion(new_email()) for _ in range(2)]).status_code == 200
    held = wait_for_relay(server, relay, lambda r: r.last_error is not None or r.sent == 5)
    assert held.dead == 0
    if held.last_error is not None and held.sent == 3:  # else the upstream's minute ended
        assert "API rate limit exceeded" in held.last_error
        assert (held.state, held.backlog, held.paused_reason) == ("paused", 2, None)
        assert held.paused_until is not None
        assert len(upstream_events(upstream, up_account)) == 3


def test_a_contacts_limit_holds_that_contact_and_lets_the_others_go(own_server,
                                                                    upstream):
    up_account, up_token = upstream.new_account()
    upstream.call(upstream.store.set_account_limits(up_account, None, None, 2))
    server = own_server(**FAST)
    account_id, token = server.new_account()
    relay = create_relay(server, account_id, upstream.url, up_token)
    busy, other = new_email("busy"), new_email("other")
    with server.client(token) as api:
        server.call(server.store.set_relay_paused(relay, True))  # to send them as one batch
        assert api.send_batch([conversion(busy, name=f"n{n}") for n in range(3)]
                              + [conversion(other)]).status_code == 200
        server.call(server.store.set_relay_paused(relay, False))
        wait_for_relay(server, relay, lambda r: r.sent == 3 and r.backlog == 1)
        # The busy contact's first two fit its limit; its third waits, and later ones behind it.
        assert [(p["email"], p.get("name")) for _, p in upstream_events(upstream, up_account)
                if p["email"] == busy] == [(busy, "n0"), (busy, "n1")]
        assert api.send_event(conversion(busy, name="n3")).status_code == 200
        assert api.send_event(conversion(other, name="again")).status_code == 200
    wait_for_upstream(upstream, up_account, 4)
    found = wait_for_relay(server, relay, lambda r: r.sent == 4 and r.backlog == 2)
    assert "lead_limiter" in found.last_error and found.state == "active"
    assert [p.get("name") for _, p in upstream_events(upstream, up_account)
            if p["email"] == other] == [None, "again"]


def test_a_refused_event_is_a_dead_letter_and_replayed_once_the_upstream_takes_it(
        own_server, upstream):
    up_account, up_token = upstream.new_account()
    with upstream.client(up_token) as up:  # the upstream's cf_plan holds numbers
        assert up.send_event(conversion(new_email(), cf_plan=1)).status_code == 200
    server = own_server(**FAST)
    account_id, token = server.new_account()
    relay = create_relay(server, account_id, upstream.url, up_token)
    refused, fine = new_email("refused"), new_email("fine")
    with server.client(token) as api:
        answer = api.send_batch([conversion(refused, cf_plan="gold"), conversion(fine)])
        assert answer.status_code == 200
        refused_uuid = answer.json()["events"][0]["event_uuid"]
        found = wait_for_relay(server, relay, lambda r: r.dead == 1 and r.sent == 1)
        assert found.backlog == 0
        assert [p["email"] for _, p in upstream_events(upstream, up_account)][1:] == [fine]
        [letter] = api.get(f"/rdevents/v1/relays/{relay}/dead-letters").json()["dead_letters"]
        assert letter["event_uuid"] == refused_uuid and letter["status"] == 400
        assert "INVALID_DATA_TYPE" in letter["error"] and "cf_plan" in letter["error"]
        assert letter["failed_at"] is not None
        # Someone changes the upstream's field; the dead letter is replayed and goes.
        with upstream.client(up_token) as up:
            [field] = [f for f in up.get("/platform/contacts/fields").json()["fields"]
                       if f["api_identifier"] == "cf_plan"]
            assert up.delete(f"/platform/contacts/fields/{field['uuid']}").status_code == 204
        replayed = api.post(f"/rdevents/v1/relays/{relay}/dead-letters/replay",
                            json={"all": True})
        assert replayed.json() == {"replayed": 1}
    wait_for_relay(server, relay, lambda r: r.sent == 2 and r.dead == 0 and r.backlog == 0)
    assert upstream_events(upstream, up_account)[-1][1]["email"] == refused
    assert dead_letters(server, relay) == []


def test_from_start_forwards_the_history_too(own_server, upstream):
    server = own_server(**FAST)
    account_id, token = server.new_account()
    with server.client(token) as api:
        old = [new_email("old") for _ in range(3)]
        assert api.send_batch([conversion(email) for email in old]).status_code == 200
        assert api.delete(f"/platform/contacts/email:{old[2]}").status_code == 204  # erased
        all_account, all_token = upstream.new_account()
        new_account, new_token = upstream.new_account()
        create_relay(server, account_id, upstream.url, all_token, from_start=True)
        create_relay(server, account_id, upstream.url, new_token)
        later = new_email("later")
        assert api.send_event(conversion(later)).status_code == 200
    assert [p["email"] for _, p in wait_for_upstream(upstream, all_account, 3)] == [
        *old[:2], later]
    assert [p["email"] for _, p in wait_for_upstream(upstream, new_account, 1)] == [later]


def test_an_erased_contacts_waiting_events_are_not_relayed(own_server, upstream):
    up_account, up_token = upstream.new_account()
    server = own_server(**FAST)
    account_id, token = server.new_account()
    relay = create_relay(server, account_id, upstream.url, up_token)
    server.call(server.store.set_relay_paused(relay, True))
    erased, kept = new_email("erased"), new_email("kept")
    with server.client(token) as api:
        assert api.send_batch([conversion(erased), conversion(kept)]).status_code == 200
        assert relay_of(server, relay).backlog == 2
        assert api.delete(f"/platform/contacts/email:{erased}").status_code == 204
    assert relay_of(server, relay).backlog == 1
    server.call(server.store.set_relay_paused(relay, False))
    wait_for_relay(server, relay, lambda r: r.backlog == 0)
    assert [p["email"] for _, p in upstream_events(upstream, up_account)] == [kept]
