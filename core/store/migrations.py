"""The store's schema, versioned, and its two roles: `perpdesk store init`.

Why versioned migrations: engines of several versions may ship to one database; each change is a
numbered step applied once (recorded in ``perpdesk.schema_migrations``), under an advisory lock
so two ``store init`` at once cannot both apply one step. A step, once released, never changes:
a new column is a new step.

Why two roles: an engine only ever adds rows, so its role can only insert (journal tables) and
call ``perpdesk.put_status`` (its status row); it cannot read, update or delete anything, so a
leaked engine credential neither reads the accounts nor rewrites their history. Reports and the
Accounts screen use a role that can only read.
"""
from __future__ import annotations

import re
from typing import Any

from core.store.connect import SCHEMA, STATUS_CHANNEL, connect, describe
from core.store.errors import StoreError

WRITER_ROLE = "perpdesk_writer"
READER_ROLE = "perpdesk_reader"
_LOCK_KEY = 0x70647374  # pg_advisory_xact_lock key of `store init`
_ROLE_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# The journal families as tables: the scope (engine, venue, mode, account), the row's identity
# (row_key: fill_id, order_id|state, close_id, bill_id, ts|position_id, ts|event|rule), then the
# CSV columns with their types (money and sizes NUMERIC, never float; times timestamptz).
_SCOPE = ("engine text NOT NULL, venue text NOT NULL, mode text NOT NULL, account text NOT NULL, "
          "row_key text NOT NULL, shipped_at timestamptz NOT NULL DEFAULT now(), ")
_FAMILY_COLUMNS = {
    "orders": '"ts" timestamptz NOT NULL, "event" text, "symbol" text, "order_id" text, '
              '"client_order_id" text, "fill_id" text, "side" text, "contracts" numeric, '
              '"contract_size" numeric, "coins" numeric, "price" numeric, "fee" numeric, '
              '"fee_ccy" text, "reduce_only" text, "liquidity" text, "origin" text, "pos_side" text, '
              '"category" text, "algo_id" text, "fill_pnl" numeric, "liq_penalty" numeric, '
              '"order_type" text, "filled_contracts" numeric, "avg_price" numeric, "message" text',
    "trades": '"closed_at" timestamptz NOT NULL, "symbol" text, "position_id" text, "side" text, '
              '"reason" text, "size_before" numeric, "size_closed" numeric, "size_after" numeric, '
              '"contracts_closed" numeric, "contract_size" numeric, "entry_price" numeric, '
              '"exit_price" numeric, "gross_pnl" numeric, "fee" numeric, "liq_penalty" numeric, '
              '"funding" numeric, "net_pnl" numeric, "opened_at" timestamptz, "source" text, '
              '"close_id" text, "fill_ids" text',
    "funding": '"ts" timestamptz NOT NULL, "symbol" text, "position_id" text, "rate" numeric, '
               '"position_contracts" numeric, "position_coins" numeric, "mark_price" numeric, '
               '"amount" numeric, "ccy" text, "bill_id" text',
    "positions_open": '"ts" timestamptz NOT NULL, "symbol" text, "position_id" text, "side" text, '
                      '"contracts" numeric, "coins" numeric, "entry_price" numeric, '
                      '"mark_price" numeric, "unrealized_pnl" numeric, "funding_accrued" numeric, '
                      '"leverage" numeric, "margin_mode" text, "liq_price" numeric, '
                      '"pos_side" text, "contract_size" numeric, "opened_at" timestamptz',
    "risk": '"ts" timestamptz NOT NULL, "event" text, "rule" text, "value" numeric, '
            '"limit" numeric, "state" text, "message" text',
}
JOURNAL_TABLES: tuple[str, ...] = tuple(_FAMILY_COLUMNS)

_STATUS_FIELDS = ("venue text", "mode text", "account text", "equity numeric", "upnl numeric",
                  "today_net numeric", "fees numeric", "funding numeric", "positions integer",
                  "strategy text", "risk_state text", "links text", "store_rows_behind bigint",
                  "store_seconds_behind numeric", "heartbeat timestamptz")
STATUS_COLUMNS: tuple[str, ...] = tuple(f.split()[0] for f in _STATUS_FIELDS)


def _v1() -> str:
    tables = "".join(
        f"CREATE TABLE {SCHEMA}.{name} ({_SCOPE}{cols}, PRIMARY KEY (engine, row_key));\n"
        f"CREATE INDEX {name}_account ON {SCHEMA}.{name} (venue, mode, account);\n"
        for name, cols in _FAMILY_COLUMNS.items())
    params = ", ".join(f"p_{f}" for f in ("engine", *(f.split()[0] for f in _STATUS_FIELDS)))
    args = ", ".join(["p_engine text", *(f"p_{f}" for f in _STATUS_FIELDS)])
    sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in STATUS_COLUMNS)
    return f"""
CREATE TABLE {SCHEMA}.engine_status (engine text PRIMARY KEY, {', '.join(_STATUS_FIELDS)});
{tables}
CREATE FUNCTION {SCHEMA}.put_status({args}) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  INSERT INTO {SCHEMA}.engine_status (engine, {', '.join(STATUS_COLUMNS)}) VALUES ({params})
  ON CONFLICT (engine) DO UPDATE SET {sets};
  PERFORM pg_notify('{STATUS_CHANNEL}', p_engine);
END $$;
REVOKE ALL ON FUNCTION {SCHEMA}.put_status FROM PUBLIC;
"""


def _v2() -> str:
    """An engine name belongs to one account: the first (venue, mode, account) that claims it.

    Why: every engine shares the insert-only role, so only the name keeps their rows apart; two
    engines given one name on two accounts would mix their rows silently. ``claim_engine`` (the
    shipper calls it on each connection) and ``put_status`` refuse the second account by name."""
    args = ", ".join(["p_engine text", *(f"p_{f}" for f in _STATUS_FIELDS)])
    params = ", ".join(f"p_{f}" for f in ("engine", *(f.split()[0] for f in _STATUS_FIELDS)))
    sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in STATUS_COLUMNS)
    return f"""
CREATE TABLE {SCHEMA}.engines (engine text PRIMARY KEY, venue text NOT NULL, mode text NOT NULL,
  account text NOT NULL, since timestamptz NOT NULL DEFAULT now());
INSERT INTO {SCHEMA}.engines (engine, venue, mode, account)
  SELECT DISTINCT ON (engine) engine, venue, mode, account FROM {SCHEMA}.engine_status;
CREATE FUNCTION {SCHEMA}.claim_engine(p_engine text, p_venue text, p_mode text, p_account text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE owner record;
BEGIN
  INSERT INTO {SCHEMA}.engines (engine, venue, mode, account)
    VALUES (p_engine, p_venue, p_mode, p_account) ON CONFLICT (engine) DO NOTHING;
  SELECT venue, mode, account INTO owner FROM {SCHEMA}.engines WHERE engine = p_engine;
  IF (owner.venue, owner.mode, owner.account) IS DISTINCT FROM (p_venue, p_mode, p_account) THEN
    RAISE EXCEPTION 'engine name % already belongs to % % account % in the store; give this '
      'engine its own [engine] name', p_engine, owner.venue, owner.mode, owner.account
      USING ERRCODE = 'unique_violation';
  END IF;
END $$;
REVOKE ALL ON FUNCTION {SCHEMA}.claim_engine FROM PUBLIC;
CREATE OR REPLACE FUNCTION {SCHEMA}.put_status({args}) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM {SCHEMA}.claim_engine(p_engine, p_venue, p_mode, p_account);
  INSERT INTO {SCHEMA}.engine_status (engine, {', '.join(STATUS_COLUMNS)}) VALUES ({params})
  ON CONFLICT (engine) DO UPDATE SET {sets};
  PERFORM pg_notify('{STATUS_CHANNEL}', p_engine);
END $$;
"""


def _v3() -> str:
    """An account ships under one engine name: the first that claimed it.

    Why: rows are told apart by (engine, row_key), so the same journal shipped under a second name
    (the default name is host + journal folder: a moved folder, a container's new host name, a
    renamed engine) lands a second time, and `report --store` and the accounts total count that
    account twice. Two engines on one account double it too: each journals every fill of the
    account. The second name is refused, naming the first, before anything lands; a lock per
    account makes two first claims at once take turns."""
    return f"""
CREATE OR REPLACE FUNCTION {SCHEMA}.claim_engine(p_engine text, p_venue text, p_mode text,
  p_account text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE owner record; first_name text;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('perpdesk account ' || p_venue || ' ' || p_mode || ' '
                                         || p_account));
  SELECT engine INTO first_name FROM {SCHEMA}.engines
    WHERE venue = p_venue AND mode = p_mode AND account = p_account ORDER BY since, engine LIMIT 1;
  IF first_name IS NOT NULL AND first_name <> p_engine THEN
    RAISE EXCEPTION '% % account % already ships to the store as engine %; set [engine] name = "%" '
      'in this engine''s config.toml (under a second name its rows would be counted twice)',
      p_venue, p_mode, p_account, first_name, first_name USING ERRCODE = 'unique_violation';
  END IF;
  INSERT INTO {SCHEMA}.engines (engine, venue, mode, account)
    VALUES (p_engine, p_venue, p_mode, p_account) ON CONFLICT (engine) DO NOTHING;
  SELECT venue, mode, account INTO owner FROM {SCHEMA}.engines WHERE engine = p_engine;
  IF (owner.venue, owner.mode, owner.account) IS DISTINCT FROM (p_venue, p_mode, p_account) THEN
    RAISE EXCEPTION 'engine name % already belongs to % % account % in the store; give this '
      'engine its own [engine] name', p_engine, owner.venue, owner.mode, owner.account
      USING ERRCODE = 'unique_violation';
  END IF;
END $$;
"""


# (version, what it does, SQL): applied in order, each once; a released step never changes.
MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (1, "journal tables, engine status, put_status", _v1()),
    (2, "an engine name belongs to one account (engines, claim_engine)", _v2()),
    (3, "an account ships under one engine name (claim_engine)", _v3()),
)


def _grants(writer: str, reader: str, version: int) -> str:
    tables = ", ".join(f"{SCHEMA}.{t}" for t in JOURNAL_TABLES)
    functions = f"{SCHEMA}.put_status" + (f", {SCHEMA}.claim_engine" if version >= 2 else "")
    return f"""
REVOKE ALL ON SCHEMA {SCHEMA} FROM PUBLIC;
GRANT USAGE ON SCHEMA {SCHEMA} TO {writer}, {reader};
REVOKE ALL ON ALL TABLES IN SCHEMA {SCHEMA} FROM {writer}, {reader};
GRANT INSERT ON {tables} TO {writer};
GRANT EXECUTE ON FUNCTION {functions} TO {writer};
GRANT SELECT ON ALL TABLES IN SCHEMA {SCHEMA} TO {reader};
"""


async def _ensure_role(conn: Any, role: str) -> bool:
    exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
    if exists:
        return False
    await conn.execute(f"CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE")
    return True


async def init_store(url: str, writer: str = WRITER_ROLE, reader: str = READER_ROLE,
                     *, upto: int | None = None) -> list[str]:
    """Create or upgrade the schema and the two roles; the lines to print (what was done)."""
    for role in (writer, reader):
        if not _ROLE_RE.match(role):
            raise StoreError(f"store init: role name {role!r} must be lowercase letters, digits, _")
    if writer == reader:
        raise StoreError("store init: the insert-only and the read-only role must differ")
    conn = await connect(url, what="store init")
    import asyncpg

    done: list[str] = []
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
            for role in (writer, reader):
                if await _ensure_role(conn, role):
                    done.append(f"created role {role}")
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
            await conn.execute(f"CREATE TABLE IF NOT EXISTS {SCHEMA}.schema_migrations "
                               "(version integer PRIMARY KEY, what text NOT NULL, "
                               "applied_at timestamptz NOT NULL DEFAULT now())")
            applied = {r[0] for r in await conn.fetch(f"SELECT version FROM {SCHEMA}.schema_migrations")}
            for version, what, sql in MIGRATIONS:
                if version in applied or (upto is not None and version > upto):
                    continue
                await conn.execute(sql)
                await conn.execute(f"INSERT INTO {SCHEMA}.schema_migrations (version, what) "
                                   "VALUES ($1, $2)", version, what)
                done.append(f"applied migration {version}: {what}")
            db = await conn.fetchval("SELECT current_database()")
            await conn.execute(f'GRANT CONNECT, TEMPORARY ON DATABASE "{db}" TO {writer}')
            await conn.execute(f'GRANT CONNECT ON DATABASE "{db}" TO {reader}')
            version = int(await conn.fetchval(f"SELECT max(version) FROM {SCHEMA}.schema_migrations"))
            await conn.execute(_grants(writer, reader, version))
    except asyncpg.InsufficientPrivilegeError as exc:
        raise StoreError(f"store init: {describe(exc)}; run it as a PostgreSQL role that may "
                         "create roles and schemas (e.g. the postgres superuser)") from None
    except asyncpg.PostgresError as exc:
        raise StoreError(f"store init failed: {describe(exc)}") from None
    finally:
        await conn.close()
    done.append(f"store schema at version {version}; insert-only role {writer}, read-only role {reader}")
    return done


def staging_ddl(table: str) -> str:
    """A session's staging table for ``table`` (the engine's role cannot read the real one, so
    ``LIKE`` is out): the same columns, emptied at each commit."""
    return (f"CREATE TEMP TABLE IF NOT EXISTS stage_{table} ({_SCOPE}{_FAMILY_COLUMNS[table]}) "
            "ON COMMIT DELETE ROWS")
