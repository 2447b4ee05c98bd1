"""E-commerce events.

The seed's four events (ORDER_PLACED, ORDER_PLACED_ITEM, CART_ABANDONED, CART_ABANDONED_ITEM),
which RD Station has since deprecated, and the eight ECOMMERCE_* events that replace them
(reference §6.1). RD documents no field table for the ECOMMERCE_* events; their fields are those
RD's own integration node sends, all optional but `email`.
"""

from typing import Any

from .fields import (
    LEGAL_BASES,
    LEGAL_BASES_EXAMPLE,
    EventType,
    Field,
    FieldType,
    contact_string,
    email,
    event_string,
)

_DEPRECATED = "RD Station replaced this event with the ECOMMERCE_* events."
_NAME = contact_string("name", "Name of the contact.")
PAYMENT_METHODS = ("Credit Card", "Debit Card", "Invoice", "Others")


def _legacy(name: str, title: str, description: str, fields: tuple[Field, ...],
            example: dict[str, Any]) -> EventType:
    return EventType(
        name=name,
        family="ecommerce",
        title=title,
        description=description,
        fields=(_NAME, email(), *fields, LEGAL_BASES),
        example={
            "event_type": name,
            "event_family": "CDP",
            "payload": {**example, "legal_bases": LEGAL_BASES_EXAMPLE},
        },
        deprecated=_DEPRECATED,
    )


ORDER_PLACED = _legacy(
    "ORDER_PLACED",
    "Order placed",
    "Registered every time an order is placed on an e-commerce platform.",
    (
        event_string("cf_order_id", "Order identifier", required=True),
        Field("cf_order_total_items", FieldType.INTEGER, True,
              "Total number of itens from the order."),
        event_string("cf_order_status", "Status of the order to when the event was triggered",
                     required=True),
        Field("cf_order_payment_method", FieldType.STRING, True,
              'Method of payment. Available options: "Credit Card", "Debit Card", "Invoice", '
              '"Others"', options=PAYMENT_METHODS),
        Field("cf_order_payment_amount", FieldType.FLOAT, True, "Total value of the order"),
    ),
    {
        "name": "Contact's Name",
        "email": "email@email.com",
        "cf_order_id": "order identifier",
        "cf_order_total_items": 2,
        "cf_order_status": "pending_payment",
        "cf_order_payment_method": "Credit Card",
        "cf_order_payment_amount": 40.20,
    },
)

ORDER_PLACED_ITEM = _legacy(
    "ORDER_PLACED_ITEM",
    "Order placed with a specific item",
    "Registered every time an order with a specific item is placed on an e-commerce platform.",
    (
        event_string("cf_order_id", "Order identifier", required=True),
        event_string("cf_order_product_id", "Product Identifier", required=True),
        event_string("cf_order_product_sku", "Product SKU", required=True),
    ),
    {
        "name": "Contact's Name",
        "email": "email@email.com",
        "cf_order_id": "Order Identifier",
        "cf_order_product_id": "Product 1",
        "cf_order_product_sku": "SKU 1",
    },
)

CART_ABANDONED = _legacy(
    "CART_ABANDONED",
    "Cart abandoned",
    "Registered every time a cart is abandoned on an e-commerce platform.",
    (
        event_string("cf_cart_id", "Cart identifier", required=True),
        Field("cf_cart_total_items", FieldType.INTEGER, True,
              "Total number of itens from the cart."),
        event_string("cf_cart_status", "Status of the cart to when the event was triggered",
                     required=True),
    ),
    {
        "name": "Contact's Name",
        "email": "email@email.com",
        "cf_cart_id": "Cart identifier",
        "cf_cart_total_items": 2,
        "cf_cart_status": "in_progress",
    },
)

CART_ABANDONED_ITEM = _legacy(
    "CART_ABANDONED_ITEM",
    "Cart abandoned with a specific item",
    "Registered every time a cart with a specific item is abandoned on an e-commerce platform.",
    (
        event_string("cf_cart_id", "Cart identifier", required=True),
        event_string("cf_cart_product_id", "Identifier of the product that was left on the cart.",
                     required=True),
        event_string("cf_cart_product_sku", "SKU of the product that was left on the cart",
                     required=True),
    ),
    {
        "name": "Contact's Name",
        "email": "email@email.com",
        "cf_cart_id": "Cart identifier",
        "cf_cart_product_id": "Product identifier",
        "cf_cart_product_sku": "Product SKU",
    },
)

# --- the current ECOMMERCE_* events ---------------------------------------------------------------

_LINE_ITEM = (
    event_string("product_id", "Product identifier."),
    event_string("product_title", "Product title."),
    Field("price", FieldType.FLOAT, False, "Unit price."),
    Field("quantity", FieldType.INTEGER, False, "Quantity."),
    event_string("product_url", "Product page URL."),
    event_string("variant_id", "Variant identifier."),
    event_string("variant_title", "Variant title."),
    event_string("sku", "Product SKU."),
    event_string("image_url", "Product image URL."),
    Field("categories", FieldType.STRING_ARRAY, False, "Product categories."),
)

_ECOMMERCE_FIELDS = (
    email(),
    contact_string("name", "Name of the contact."),
    contact_string("mobile_phone", "Mobile phone of the contact."),
    contact_string("personal_phone", "Phone of the contact."),
    LEGAL_BASES,
    event_string("identifier", "Identifier of the event in the store."),
    event_string("order_identifier", "Order identifier."),
    event_string("checkout_url", "Checkout URL."),
    event_string("order_url", "Order URL."),
    event_string("currency", "Currency code, e.g. BRL."),
    Field("price", FieldType.FLOAT, False, "Total value."),
    Field("total_items", FieldType.INTEGER, False, "Total number of items."),
    Field("line_items", FieldType.OBJECT_ARRAY, False, "Products of the cart or order.",
          items=_LINE_ITEM),
    Field("items", FieldType.OBJECT_ARRAY, False,
          "Products of the cart or order (the name RD's deprecation notice uses).",
          items=_LINE_ITEM),
    Field("shipping_price", FieldType.FLOAT, False, "Shipping price."),
    event_string("shipping_city", "Shipping city."),
    event_string("shipping_state", "Shipping state."),
    event_string("shipping_country", "Shipping country."),
    Field("payment_methods", FieldType.STRING_ARRAY, False, "Payment methods."),
    event_string("cancel_reason", "Why the order was cancelled."),
    event_string("tracking_company", "Shipping company."),
    event_string("tracking_code", "Shipment tracking code."),
    event_string("tracking_url", "Shipment tracking URL."),
)

_ECOMMERCE_EXAMPLE_ITEMS = [
    {
        "product_id": "p-1",
        "product_title": "Blue mug",
        "price": 20.1,
        "quantity": 2,
        "sku": "MUG-BLUE",
        "categories": ["kitchen"],
    }
]


def _current(name: str, title: str, description: str, extra_example: dict[str, Any]) -> EventType:
    return EventType(
        name=name,
        family="ecommerce",
        title=title,
        description=description,
        fields=_ECOMMERCE_FIELDS,
        example={
            "event_type": name,
            "event_family": "CDP",
            "payload": {
                "email": "email@email.com",
                "currency": "BRL",
                "price": 40.2,
                "total_items": 2,
                "line_items": _ECOMMERCE_EXAMPLE_ITEMS,
                **extra_example,
            },
        },
        source="reference §6.1",
    )


ECOMMERCE_EVENT_TYPES = (
    _current("ECOMMERCE_CHECKOUT_STARTED", "Checkout started",
             "A contact started the checkout.",
             {"checkout_url": "https://shop.example/checkout/1"}),
    _current("ECOMMERCE_CART_ABANDONED", "Cart abandoned",
             "A contact left a cart without buying.",
             {"checkout_url": "https://shop.example/checkout/1"}),
    _current("ECOMMERCE_ORDER_PLACED", "Order placed", "A contact placed an order.",
             {"order_identifier": "1001", "payment_methods": ["Credit Card"]}),
    _current("ECOMMERCE_ORDER_PAID", "Order paid", "An order was paid.",
             {"order_identifier": "1001"}),
    _current("ECOMMERCE_ORDER_FULFILLED", "Order fulfilled", "An order was shipped.",
             {"order_identifier": "1001", "tracking_company": "Correios",
              "tracking_code": "BR123", "tracking_url": "https://track.example/BR123"}),
    _current("ECOMMERCE_SHIPMENT_DELIVERED", "Shipment delivered", "An order was delivered.",
             {"order_identifier": "1001"}),
    _current("ECOMMERCE_ORDER_CANCELLED", "Order cancelled", "An order was cancelled.",
             {"order_identifier": "1001", "cancel_reason": "customer"}),
    _current("ECOMMERCE_ORDER_REFUNDED", "Order refunded", "An order was refunded.",
             {"order_identifier": "1001"}),
)

LEGACY_EVENT_TYPES = (ORDER_PLACED, ORDER_PLACED_ITEM, CART_ABANDONED, CART_ABANDONED_ITEM)
