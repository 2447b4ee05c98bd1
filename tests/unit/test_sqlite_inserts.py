"""The SQLite store's inserts of many rows to a statement, on a database in memory."""

from __future__ import annotations

import math
import sqlite3

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rdevents.store.queries import TableRows
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
    SQLiteStore("sqlite:///unused.db").insert_rows(conn, [TableRows("t", COLUMNS, rows)])
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


ODD_VALUES = [None, True, False, 2**63 - 1, -2**63, float("inf"), -0.0, 0.1, "", "a\x00b",
              "0012", "é", b"\x00\x01", 7]


@given(rows=st.lists(st.tuples(*[st.sampled_from(ODD_VALUES)] * 4), max_size=300))
def test_values_are_stored_as_executemany_stored_them(rows):
    conn = sqlite3.connect(":memory:", isolation_level=None)
    for name in ("by_step", "by_statement"):
        conn.execute(f"CREATE TABLE {name} (id INTEGER PRIMARY KEY, position INTEGER, "
                     "label TEXT, amount REAL, flag BOOLEAN)")
    conn.executemany("INSERT INTO by_step (position, label, amount, flag) VALUES (?, ?, ?, ?)",
                     rows)
    SQLiteStore("sqlite:///unused.db").insert_rows(conn, [TableRows("by_statement", COLUMNS,
                                                                     rows)])
    read = ("SELECT id, position, typeof(position), label, typeof(label), amount, "
            "typeof(amount), flag, typeof(flag) FROM {} ORDER BY id")
    assert (conn.execute(read.format("by_statement")).fetchall()
            == conn.execute(read.format("by_step")).fetchall())


def test_no_rows_need_no_statement_whatever_the_limit():
    conn = table()
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 1)  # less than one row's columns
    assert inserted(conn, []) == []


def test_rows_of_another_width_are_refused_rather_than_run_together():
    with pytest.raises(ValueError, match="4 values each"):
        inserted(table(), [(1, "a"), (2, "b", 0.5, True, "extra", "values")])


def test_one_statement_text_for_each_size():
    first = insert_statement("t", COLUMNS, 2)
    assert first == ("INSERT INTO t (position, label, amount, flag) VALUES "
                     "(?, ?, ?, ?), (?, ?, ?, ?)")
    assert insert_statement("t", COLUMNS, 2) is first
