"""The journal against the exchange, position by position.

``compare`` is the comparison (pure, plus ``reconcile_with_venue`` for the I/O; the engine runs it
for the console's reconcile screen); ``command`` is `perpdesk reconcile` (which exchange to
compare with, binding the journal to its account, printing); ``saved`` loads the embedded
exchange as an engine saved it, for a reconcile with the console closed.
"""
