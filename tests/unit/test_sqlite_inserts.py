"""The SQLite store's inserts of many rows to a statement, on a database in memory."""

from __future__ import annotations

import math
import sqlite3

from hypothesis import given
from hypothesis import strategies as st

from rdevents.store.sqlite import (
    ROWS_A_STATEMENT,
    SQLiteStore,
    insert_statement,
    statement_sizes,
)

COLUMNS = ("position", "label", "amount", "flag")


@given(rows=st.integers(0, 5_000), most=st.integers(1, 300))
def test_the_statements_take_every_row_in_few_distinct_sizes(rows, most):
    sizes = statement_sizes(rows, most)
    assert sum(sizes) == rows
    assert all(0 < size <= most for size in sizes)
    # `most` while that many are left, then at most one statement of each power of two.
    rest = [size for size in sizes if size != most]
    assert len(rest) == len(set(rest)) and all(size & (size - 1) == 0 for size in rest)
    assert len(sizes) == rows // most + bin(rows % most).count("1")
    assert len(set(sizes)) <= 2 + int(math.log2(most))


def table() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, position INTEGER, label TEXT, "
                 "amount REAL, flag BOOLEAN)")
    return conn


def inserted(conn: sqlite3.Connection, rows: list[tuple]) -> list[tuple]:
    SQLiteStore("sqlite:///unused.db").insert_rows(conn, "t", COLUMNS, rows)
    return conn.execute(f"SELECT {', '.join(COLUMNS)} FROM t ORDER BY id").fetchall()


@given(count=st.sampled_from([0, 1, 2, 3, ROWS_A_STATEMENT - 1, ROWS_A_STATEMENT,
                              ROWS_A_STATEMENT + 1, 1_000]))
def test_rows_are_inserted_as_given_in_their_order(count):
    rows = [(k, None if k % 3 else f"row {k}", k / 7, k % 2 == 0) for k in range(count)]
    expected = [(k, label, amount, int(flag)) for k, label, amount, flag in rows]
    assert inserted(table(), rows) == expected


def test_a_low_limit_of_parameters_makes_smaller_statements():
    conn = table()
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 10)  # two rows of four columns
    rows = [(k, "x", 0.5, True) for k in range(5)]
    assert inserted(conn, rows) == [(k, "x", 0.5, 1) for k in range(5)]


def test_one_statement_text_for_each_size():
    first = insert_statement("t", COLUMNS, 2)
    assert first == ("INSERT INTO t (position, label, amount, flag) VALUES "
                     "(?, ?, ?, ?), (?, ?, ?, ?)")
    assert insert_statement("t", COLUMNS, 2) is first
