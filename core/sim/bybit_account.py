"""Account and history routes of the simulator's Bybit v5 face: the key's permissions, account
info, wallet balance, fee rates, the transaction log and executions.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from core.money import ZERO
from core.sim import bybit_shapes as by
from core.sim.bybit_face import (
    DAY_MS,
    WEEK_MS,
    BybitFace,
    cursor_page,
    window,
)
from core.sim.okx_shapes import s
from core.sim.params import SimError
from core.sim.state import Account


class BybitAccount(BybitFace):
    """GET /v5/user/query-api, /v5/account/..., /v5/execution/list."""

    def query_api(self, acct: Account | None, q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        assert acct is not None
        return {
            "id": acct.uid[-8:], "note": "perpdesk sim", "apiKey": acct.api_key, "readOnly": 0, "secret": "",
            "permissions": {"ContractTrade": ["Order", "Position"], "Spot": [], "Wallet": [], "Options": [],
                            "Derivatives": ["DerivativesTrade"], "CopyTrading": [], "BlockTrade": [],
                            "Exchange": [], "NFT": [], "Affiliate": [], "Earn": [], "FiatP2P": [],
                            "FiatConvertBroker": [], "FiatGlobalPay": [], "FiatBitPay": [], "BitCard": [],
                            "ByXPost": []},
            "ips": ["*"], "type": 1, "deadlineDay": -2, "expiredAt": "1970-01-01T00:00:00Z",
            "createdAt": "2026-01-01T00:00:00Z", "unified": 0, "uta": 1, "userID": int(acct.uid),
            "inviterID": 0, "vipLevel": "No VIP", "mktMakerLevel": "0", "affiliateID": 0, "rsaPublicKey": "",
            "isMaster": True, "parentUid": "0", "kycLevel": "LEVEL_1", "kycRegion": "", "userIDInt64": acct.uid,
            "inviterIDInt64": "0", "affiliateIDInt64": "0",
        }

    def account_info(self, acct: Account | None, q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        assert acct is not None
        # unifiedMarginStatus 6: a unified trading account (UTA 2.0), what Bybit opens today
        return {"marginMode": "REGULAR_MARGIN", "updatedTime": str(acct.u_time), "unifiedMarginStatus": 6,
                "dcpStatus": "OFF", "timeWindow": 10, "smpGroup": 0, "isMasterTrader": False,
                "spotHedgingStatus": "OFF"}

    def wallet_balance(self, acct: Account | None, q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        assert acct is not None
        if str(q.get("accountType") or "") != "UNIFIED":
            raise SimError("10001", "params error: accountType only support UNIFIED")
        return {"list": [self.wallet_item(acct)]}

    def fee_rate(self, acct: Account | None, q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if not self.linear(q):
            return {"list": []}
        insts = [self.inst(q["symbol"])] if q.get("symbol") else list(self.ex.specs)
        return {"list": [{"symbol": by.symbol(i), "takerFeeRate": s(self.ex.taker_fee),
                          "makerFeeRate": s(self.ex.maker_fee)} for i in insts]}

    def transaction_log(self, acct: Account | None, q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        assert acct is not None
        if q.get("category") and q["category"] != "linear":
            return {"list": [], "nextPageCursor": ""}
        start, end = window(q, self.ex.clock(), DAY_MS if not (q.get("startTime") and q.get("endTime")) else WEEK_MS)
        fills = {f.trade_id: f for f in acct.fills}
        size: dict[tuple[str, str, str], Decimal] = {}
        penalties: dict[str, Decimal] = {}  # ordId -> liquidation fee, folded into its fill's row
        rows = []
        for b in acct.bills:  # oldest first: the position size after each row is a running sum
            if by.is_penalty(b):
                penalties[b.ord_id] = penalties.get(b.ord_id, ZERO) - b.bal_chg
                continue
            spec = self.ex.specs[b.inst_id]
            f = fills.get(b.trade_id) if b.trade_id else None
            key = (b.inst_id, b.mgn_mode, f.pos_side if f is not None else "net")
            if f is not None:
                signed = f.fill_sz if f.side == "buy" else -f.fill_sz
                size[key] = size.get(key, ZERO) + signed
            want = q.get("type")
            kind = "SETTLEMENT" if b.type == "8" else "TRADE"
            if start <= b.ts <= end and (not want or want == kind) and (not q.get("currency") or q["currency"] == by.COIN):
                rate = self.funding_rate_at(b.inst_id, b.ts) if b.type == "8" else self.fee_rate_of(
                    f is not None and f.exec_type == "M")
                o = acct.orders.get(b.ord_id)
                rows.append(by.transaction(b, spec, f, size.get(key, ZERO) * spec.ct_val, rate,
                                           o.tag if o is not None else "", penalties.pop(b.ord_id, ZERO)))
        rows.reverse()
        chunk, cursor = cursor_page(rows, q, 20, 50)
        return {"nextPageCursor": cursor, "list": chunk}

    def execution_rows(self, acct: Account, inst: str = "", *, start: int = 0, end: int | None = None,
                       kinds: set[str] | None = None, order_id: str = "", link: str = "") -> list[dict[str, Any]]:
        """Every execution of the account (trades, ADL and bust fills, funding), newest first."""
        r = self.replay(acct)
        out: list[tuple[int, int, dict[str, Any]]] = []
        for f in acct.fills:
            if (inst and f.inst_id != inst) or f.ts < start or (end is not None and f.ts > end):
                continue
            if order_id and f.ord_id != order_id:
                continue
            o = acct.orders.get(f.ord_id)
            tag = o.tag if o is not None else ""
            if link and tag != link:
                continue
            item = by.execution(acct, f, self.ex.specs[f.inst_id], r.execs.get(f.trade_id, by.ExecInfo()), tag,
                                self.fee_rate_of(f.exec_type == "M"))
            if kinds is None or item["execType"] in kinds:
                out.append((f.ts, int(f.trade_id), item))
        if (kinds is None or "Funding" in kinds) and not order_id and not link:
            for b in acct.bills:
                if b.type == "8" and (not inst or b.inst_id == inst) and b.ts >= start and (end is None or b.ts <= end):
                    item = by.funding_execution(b, self.ex.specs[b.inst_id], self.funding_rate_at(b.inst_id, b.ts))
                    out.append((b.ts, int(b.bill_id), item))
        out.sort(key=lambda x: (x[0], x[1]), reverse=True)
        return [x[2] for x in out]

    def executions(self, acct: Account | None, q: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        assert acct is not None
        cat = str(q.get("category") or "")
        if not self.linear(q):
            return {"nextPageCursor": "", "category": cat, "list": []}
        inst = self.inst(q.get("symbol"), required=False)
        start, end = window(q, self.ex.clock(), WEEK_MS)
        kinds = {q["execType"]} if q.get("execType") else None
        rows = self.execution_rows(acct, inst, start=start, end=end, kinds=kinds,
                                   order_id=str(q.get("orderId") or ""), link=str(q.get("orderLinkId") or ""))
        chunk, cursor = cursor_page(rows, q, 50, 100)
        return {"nextPageCursor": cursor, "category": cat, "list": chunk}
