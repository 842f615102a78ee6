"""ui.tables.rows_table: the rows st.dataframe gets, as an Arrow table built without pandas."""

from datetime import datetime

import pyarrow as pa
import pytest

from ui.tables import rows_table


def test_rows_keep_their_columns_order_and_kinds():
    at = datetime(2026, 12, 4, 9, 30)
    table = rows_table(
        [
            {"Name": "Acme", "Total": 3, "Active": True, "When": at, "Status": ["✓ Connected"], "Note": None},
            {"Name": "Beta", "Total": 0, "Active": False, "When": None, "Status": ["✕ Error"], "Note": "late"},
        ]
    )
    assert table.column_names == ["Name", "Total", "Active", "When", "Status", "Note"]
    assert table.to_pylist()[0] == {
        "Name": "Acme",
        "Total": 3,
        "Active": True,
        "When": at,
        "Status": ["✓ Connected"],
        "Note": None,
    }
    assert table.schema.field("When").type == pa.timestamp("us")


def test_no_rows_give_the_named_columns_empty():
    table = rows_table([], ("Provider", "Status", "Count"))
    assert table.column_names == ["Provider", "Status", "Count"] and table.num_rows == 0


def test_a_column_mixing_kinds_is_refused_rather_than_shown_wrong():
    with pytest.raises(pa.ArrowInvalid):
        rows_table([{"Value": 1}, {"Value": "one"}])
