"""Modal screens: confirmations, partial close, order entry, reconcile diff, help, filter."""
