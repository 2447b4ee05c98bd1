"""The event catalogue: every event type of the Events API, as data.

`EVENT_TYPES` maps each type name to its `EventType`, in the order the seed documents them.
"""

from . import call, chat, ecommerce, media, standard
from .fields import EVENT_FAMILY, EventType, Field, FieldType

_ALL = (*standard.EVENT_TYPES, *ecommerce.LEGACY_EVENT_TYPES, *chat.EVENT_TYPES, *call.EVENT_TYPES,
        *media.EVENT_TYPES, *ecommerce.ECOMMERCE_EVENT_TYPES)

EVENT_TYPES: dict[str, EventType] = {t.name: t for t in _ALL}
EVENT_TYPE_NAMES: tuple[str, ...] = tuple(EVENT_TYPES)

__all__ = ["EVENT_FAMILY", "EVENT_TYPES", "EVENT_TYPE_NAMES", "EventType", "Field", "FieldType"]
