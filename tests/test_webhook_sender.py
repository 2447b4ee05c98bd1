"""The webhook sender shares its work fairly: a receiver that hangs holds up only its own
account's deliveries, and the accounts take turns at the outbox."""

from __future__ import annotations

from conftest import LOOPBACK, conversion
from hooks import new_email, subscribe
from receiver import Receiver


def test_a_hanging_receiver_holds_up_only_its_own_account(own_server):
    server = own_server(webhook_allowed_networks=LOOPBACK, webhook_timeout=30,
                        webhook_concurrency=4, webhook_concurrency_per_account=2)
    hanging, answering = Receiver().start(), Receiver().start()
    hanging.delay = 60  # longer than the timeout: held until released
    try:
        _, token_a = server.new_account()
        _, token_b = server.new_account()
        with server.client(token_a) as a, server.client(token_b) as b:
            subscribe(a, hanging.url)
            subscribe(b, answering.url)
            # more than the process's four attempts at once, all due before B's
            assert a.send_batch([conversion(new_email()) for _ in range(8)]).status_code == 200
            assert b.send_event(conversion(new_email())).status_code == 200
        answering.wait_for(1, timeout=2)
        assert hanging.deliveries == []  # still held
        assert hanging.most_at_once == 2  # A's share, no more
    finally:
        hanging.release()
        answering.stop()
        hanging.stop()


def test_accounts_take_turns_and_busy_ones_wait(own_server, receiver):
    server = own_server(webhook_allowed_networks=LOOPBACK)
    names, tokens = {}, {}
    for name in ("a", "b", "c"):
        names[name], tokens[name] = server.new_account()
        with server.client(tokens[name]) as api:
            subscribe(api, receiver.url)
    server.call(server.app.state.webhook_sender.stop())  # the test takes the deliveries itself
    for name, count in (("a", 5), ("b", 2), ("c", 1)):  # written in this order
        with server.client(tokens[name]) as api:
            assert api.send_batch([conversion(new_email())
                                   for _ in range(count)]).status_code == 200

    def take(limit: int, **busy: int) -> list[str]:
        """Whose deliveries a sender takes, with at most two of an account under way."""
        taken = server.call(server.store.take_due_deliveries(
            60, limit, 2, {names[name]: count for name, count in busy.items()}))
        return sorted(name for d in taken for name, id in names.items() if id == d.account_id)

    assert take(4) == ["a", "a", "b", "c"]  # everyone's first, then the oldest second
    assert take(10, a=2) == ["b"]  # a has two under way: none more of it
    assert take(10) == ["a", "a"]
    assert take(10, a=1) == ["a"]  # its last, in the one place it has left
    assert take(10) == []
