"""Accounting: positions built from fills (`ledger`) and the journal's net PnL per day (`report`)."""
