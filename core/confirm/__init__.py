"""Close rows confirmed against the exchange's own record of each position life.

``closes``: the confirmer (each close row made to add up to positions-history, in batches);
``history_match``: the one rule telling which positions-history record is which life (reconcile
and resync use it too); ``unconfirmed``: closes written unconfirmed at a stop, checked at the
next start.
"""
