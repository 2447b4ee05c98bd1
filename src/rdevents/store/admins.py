"""The administrators' queries of the SQL store, the counters of their sign-in attempts, and
their sessions of the dashboard (ui/)."""

from __future__ import annotations

from ..clock import utc_now
from . import AccountExists, Admin, AdminSession, SignInCounter
from .queries import Queries, placeholders

# A window's counter goes on, or starts anew (at `now`, with this attempt) once it is over.
_COUNT = (
    "INSERT INTO sign_in_attempts (subject, window_start, attempts) VALUES (?, ?, 1) "
    "ON CONFLICT (subject) DO UPDATE SET "
    "attempts = CASE WHEN sign_in_attempts.window_start > ? "
    "THEN sign_in_attempts.attempts + 1 ELSE 1 END, "
    "window_start = CASE WHEN sign_in_attempts.window_start > ? "
    "THEN sign_in_attempts.window_start ELSE excluded.window_start END "
    "RETURNING window_start, attempts")


_END_SESSIONS = ("DELETE FROM ui_sessions WHERE admin_id IN "
                 "(SELECT id FROM admins WHERE username = ?)")


class AdminQueries(Queries):
    # PostgreSQL: pruning skips the counters an attempt holds, rather than wait for them.
    SKIP_LOCKED = ""

    async def create_admin(self, account_id: int, username: str, password_hash: str) -> None:
        try:
            await self.change("INSERT INTO admins (account_id, username, password_hash, "
                              "created_at) VALUES (?, ?, ?, ?)",
                              (account_id, username, password_hash, utc_now()))
        except self.integrity_errors:
            raise AccountExists(username) from None

    async def find_admin(self, username: str) -> tuple[int, str] | None:
        rows = await self.fetch("SELECT account_id, password_hash FROM admins "
                                "WHERE username = ?", (username,))
        return (rows[0][0], rows[0][1]) if rows else None

    async def list_admins(self, account_id: int | None) -> list[Admin]:
        where, params = ("WHERE a.account_id = ? ", (account_id,)) if account_id is not None \
            else ("", ())
        rows = await self.fetch("SELECT a.username, c.name, a.created_at FROM admins a "
                                f"JOIN accounts c ON c.id = a.account_id {where}"
                                "ORDER BY c.name, a.username", params)
        return [Admin(*row) for row in rows]

    async def set_admin_password(self, username: str, password_hash: str) -> bool:
        """A new password also ends the administrator's dashboard sessions."""
        (changed, _), _ = await self.change_all([
            ("UPDATE admins SET password_hash = ? WHERE username = ?", (password_hash, username)),
            (_END_SESSIONS, (username,))])
        return changed > 0

    async def delete_admin(self, username: str) -> bool:
        _, (changed, _) = await self.change_all([
            (_END_SESSIONS, (username,)),
            ("DELETE FROM admins WHERE username = ?", (username,))])
        return changed > 0

    # --- sign-in attempts -------------------------------------------------------------------------

    async def sign_in_counters(self, subjects: list[str]) -> dict[str, SignInCounter]:
        rows = await self.fetch("SELECT subject, window_start, attempts FROM sign_in_attempts "
                                f"WHERE subject IN ({placeholders(len(subjects))})", subjects)
        return {subject: SignInCounter(start, attempts) for subject, start, attempts in rows}

    async def count_sign_in(self, subjects: list[str], now: int,
                            window: int) -> list[SignInCounter]:
        # In the order given, by every process: two attempts never wait for each other's
        # counters in opposite orders.
        results = await self.change_all([(_COUNT, (subject, now, now - window, now - window))
                                         for subject in subjects])
        return [SignInCounter(*rows[0]) for _, rows in results]

    async def uncount_sign_in(self, forget: list[str],
                              take_back: list[tuple[str, int]]) -> None:
        await self.change_all(
            [("DELETE FROM sign_in_attempts WHERE subject = ?", (subject,))
             for subject in forget]
            + [("UPDATE sign_in_attempts SET attempts = attempts - 1 WHERE subject = ? "
                "AND window_start = ? AND attempts > 0", taken) for taken in take_back])

    async def prune_sign_in(self, before: int) -> None:
        await self.change("DELETE FROM sign_in_attempts WHERE subject IN (SELECT subject FROM "
                          f"sign_in_attempts WHERE window_start < ?{self.SKIP_LOCKED})",
                          (before,))

    # --- dashboard sessions -----------------------------------------------------------------------

    async def create_admin_session(self, token_hash: str, username: str,
                                   expires_at: str) -> bool:
        """A session of the administrator until `expires_at`; False when there is no such
        administrator (deleted since the password was checked)."""
        changed, _ = await self.change(
            "INSERT INTO ui_sessions (token_hash, admin_id, account_id, created_at, expires_at) "
            "SELECT ?, id, account_id, ?, ? FROM admins WHERE username = ?",
            (token_hash, utc_now(), expires_at, username))
        return changed > 0

    async def find_admin_session(self, token_hash: str, now: str) -> AdminSession | None:
        """The live session whose cookie hashes to `token_hash`, with its administrator and
        account as they are now."""
        rows = await self.fetch(
            "SELECT s.account_id, c.name, a.username, s.expires_at FROM ui_sessions s "
            "JOIN admins a ON a.id = s.admin_id AND a.account_id = s.account_id "
            "JOIN accounts c ON c.id = s.account_id "
            "WHERE s.token_hash = ? AND s.expires_at > ?", (token_hash, now))
        return AdminSession(*rows[0]) if rows else None

    async def end_admin_session(self, token_hash: str) -> None:
        await self.change("DELETE FROM ui_sessions WHERE token_hash = ?", (token_hash,))

    async def prune_admin_sessions(self, now: str) -> None:
        """Drop the sessions that expired."""
        await self.change("DELETE FROM ui_sessions WHERE expires_at <= ?", (now,))
