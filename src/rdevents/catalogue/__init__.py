"""The event catalogue: every event type of the Events API, as data.

`EVENT_TYPES` maps each type name to its `EventType`, in the order the seed documents them.
"""

from . import call, chat, ecommerce, media, standard
from .fields import EVENT_FAMILY, EventType, Field, FieldType

_ALL = (*standard.EVENT_TYPES, *ecommerce.LEGACY_EVENT_TYPES, *chat.EVENT_TYPES, *call.EVENT_TYPES,
        *media.EVENT_TYPES, *ecommerce.ECOMMERCE_EVENT_TYPES)

EVENT_TYPES: dict[str, EventType] = {t.name: t for t in _ALL}
EVENT_TYPE_NAMES: tuple[str, ...] = tuple(EVENT_TYPES)

# cf_* names that some event type defines as a field of its own event (cf_order_*, cf_cart_*,
# cf_chat_*): on a CONVERSION they are not custom fields of the contact (RD reserves them).
EVENT_ONLY_CUSTOM_NAMES: frozenset[str] = frozenset(
    f.name for t in _ALL for f in t.fields if f.name.startswith("cf_") and not f.contact)

__all__ = ["EVENT_FAMILY", "EVENT_ONLY_CUSTOM_NAMES", "EVENT_TYPES", "EVENT_TYPE_NAMES",
           "EventType", "Field", "FieldType", "is_custom_field"]


def is_custom_field(event_type: EventType, key: str) -> bool:
    """Whether a payload key of `event_type` is a custom field of the contact beyond the table."""
    return (event_type.custom_fields and key.startswith("cf_")
            and key not in event_type.fields_by_name and key not in EVENT_ONLY_CUSTOM_NAMES)
