"""The custom fields' queries of the SQL store (RD's /platform/contacts/fields)."""

from __future__ import annotations

from ..custom_fields import FieldDefinition
from . import FieldExists
from .queries import Queries, Row, Statement, from_json, placeholders, to_json

FIELD_COLUMNS = ("uuid", "api_identifier", "data_type", "name", "label", "presentation_type",
                 "validation_rules", "origin", "created_at", "updated_at")
_SELECT = f"SELECT {', '.join(FIELD_COLUMNS)} FROM custom_fields WHERE account_id = ?"


def field_row(f: FieldDefinition) -> Row:
    """A definition as the values of FIELD_COLUMNS."""
    return (f.uuid, f.api_identifier, f.data_type, to_json(f.name), to_json(f.label),
            f.presentation_type, to_json(f.validation_rules), f.origin, f.created_at,
            f.updated_at)


def field_from_row(row: Row) -> FieldDefinition:
    return FieldDefinition(row[0], row[1], row[2], from_json(row[3]), from_json(row[4]), row[5],
                           from_json(row[6]), row[7], row[8], row[9])


class FieldQueries(Queries):
    async def list_fields(self, account_id: int) -> list[FieldDefinition]:
        rows = await self.fetch(f"{_SELECT} ORDER BY id", (account_id,))
        return [field_from_row(row) for row in rows]

    async def get_field(self, account_id: int, uuid: str) -> FieldDefinition | None:
        rows = await self.fetch(f"{_SELECT} AND uuid = ?", (account_id, uuid))
        return field_from_row(rows[0]) if rows else None

    async def create_field(self, account_id: int, definition: FieldDefinition,
                           limit: int) -> bool:
        """Store a field; False (and nothing stored) when the account has `limit` fields.
        Raises FieldExists when the account has a field of that api_identifier."""
        try:
            *_, (changed, _) = await self.change_all([
                *self.field_definitions_lock(account_id),
                (f"INSERT INTO custom_fields ({', '.join(FIELD_COLUMNS)}, account_id) "
                 f"SELECT {placeholders(len(FIELD_COLUMNS) + 1)} WHERE (SELECT count(*) FROM "
                 "custom_fields WHERE account_id = ?) < ?",
                 (*field_row(definition), account_id, account_id, limit))])
        except self.integrity_errors:
            raise FieldExists(definition.api_identifier) from None
        return changed > 0

    def field_definitions_lock(self, account_id: int) -> list[Statement]:
        """Statements that wait for the account's writes defining fields, and keep new ones
        waiting, until the transaction ends, so that the count of its fields holds until then
        (PostgreSQL: SQLite's writes take turns)."""
        return []

    async def update_field(self, account_id: int, definition: FieldDefinition) -> bool:
        """Store what may change of a definition: names, presentation and rules."""
        row = field_row(definition)
        changed, _ = await self.change(
            "UPDATE custom_fields SET name = ?, label = ?, presentation_type = ?, "
            "validation_rules = ?, updated_at = ? WHERE account_id = ? AND uuid = ?",
            (row[3], row[4], row[5], row[6], row[9], account_id, definition.uuid))
        return changed > 0

    async def delete_field(self, account_id: int, uuid: str) -> bool:
        changed, _ = await self.change("DELETE FROM custom_fields WHERE account_id = ? "
                                       "AND uuid = ?", (account_id, uuid))
        return changed > 0
