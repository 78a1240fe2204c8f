"""The console's widgets: Line-API panes (no DataTable, see table.py) and the header."""
