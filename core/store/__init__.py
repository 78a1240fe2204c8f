"""The optional PostgreSQL store: every engine's journal rows and status in one database.

The CSV day files stay the record; the store is a copy shipped after the rows are on disk, so
trading never waits on it. One idea per module: ``errors`` (StoreError), ``connect`` (URLs and
connections), ``migrations`` (schema, roles, ``perpdesk store init``), ``rows`` (a CSV line as a
store row), ``marks`` (the per-engine high-water mark), ``shipper`` (journal -> PostgreSQL),
``status`` (the once-a-second status row + NOTIFY), ``queries`` (accounts and report reads).
asyncpg is imported only by the modules that talk to the server.
"""
