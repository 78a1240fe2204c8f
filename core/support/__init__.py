"""Support code every layer may use: the base error (`errors`), private files (`safefile`), logging
and its daily file (`logs`, `logfile`), the collector's policy (`gc_tuning`), loopback checks (`net`)."""
