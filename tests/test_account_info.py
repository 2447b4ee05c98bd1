"""GET /marketing/account_info, which RD clients call when they start: RD's body, the token's
account name. On both backends."""

from __future__ import annotations


def test_it_names_the_tokens_account(server):
    account_id, token = server.new_account()
    name = server.call(server.store.account_name(account_id))
    with server.client(token) as api:
        response = api.get("/marketing/account_info")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.content == f'{{"name":"{name}"}}'.encode()


def test_it_needs_a_token(server):
    with server.client("rdv_unknown") as api:
        response = api.get("/marketing/account_info")
    assert response.status_code == 401
    assert response.json() == {"errors": {"error_type": "UNAUTHORIZED",
                                          "error_message": "Invalid token."}}
