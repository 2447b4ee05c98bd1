"""What an operator sees of accounts and their credentials, and when tokens were last used.

Secrets are stored as hashes and never shown: a token or an API key is known by its id and the
first characters kept when it was made (NULL for those made before they were kept).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..clock import utc_now
from .queries import Queries


@dataclass(frozen=True)
class AccountSummary:
    name: str
    id: int
    created_at: str


@dataclass(frozen=True)
class TokenSummary:
    id: int
    prefix: str | None
    created_at: str
    expires_at: str | None
    last_used_at: str | None
    # Its own revocation's, or that of the OAuth refresh token it was made from.
    revoked_at: str | None


@dataclass(frozen=True)
class ApiKeySummary:
    id: int
    prefix: str | None
    active: bool
    created_at: str


@dataclass(frozen=True)
class AppSummary:
    client_id: str
    account: str
    redirect_uri: str
    created_at: str


class OperatorQueries(Queries):
    async def list_accounts(self) -> list[AccountSummary]:
        rows = await self.fetch("SELECT name, id, created_at FROM accounts ORDER BY id")
        return [AccountSummary(*row) for row in rows]

    async def list_tokens(self, account_id: int) -> list[TokenSummary]:
        rows = await self.fetch(
            "SELECT t.id, t.prefix, t.created_at, t.expires_at, t.last_used_at, "
            "coalesce(t.revoked_at, r.revoked_at) FROM tokens t "
            "LEFT JOIN refresh_tokens r ON r.id = t.refresh_token_id "
            "WHERE t.account_id = ? ORDER BY t.id", (account_id,))
        return [TokenSummary(*row) for row in rows]

    async def revoke_token_id(self, token_id: int) -> bool:
        """True when a live token was revoked."""
        changed, _ = await self.change("UPDATE tokens SET revoked_at = ? "
                                       "WHERE id = ? AND revoked_at IS NULL",
                                       (utc_now(), token_id))
        return changed > 0

    async def record_token_use(self, token_hash: str, used_at: str, unless_after: str) -> None:
        """Set the token's last use, unless one after `unless_after` is recorded already."""
        await self.change("UPDATE tokens SET last_used_at = ? WHERE token_hash = ? "
                          "AND (last_used_at IS NULL OR last_used_at < ?)",
                          (used_at, token_hash, unless_after))

    async def list_api_keys(self, account_id: int) -> list[ApiKeySummary]:
        rows = await self.fetch("SELECT id, prefix, active, created_at FROM api_keys "
                                "WHERE account_id = ? ORDER BY id", (account_id,))
        return [ApiKeySummary(row[0], row[1], bool(row[2]), row[3]) for row in rows]

    async def list_apps(self, account_id: int | None) -> list[AppSummary]:
        """The account's apps, or every account's."""
        where, params = ("WHERE a.account_id = ?", (account_id,)) if account_id is not None \
            else ("", ())
        rows = await self.fetch(
            "SELECT a.client_id, c.name, a.redirect_uri, a.created_at FROM apps a "
            f"JOIN accounts c ON c.id = a.account_id {where} ORDER BY a.id", params)
        return [AppSummary(*row) for row in rows]
