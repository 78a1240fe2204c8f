"""perpdesk's embedded exchange: an OKX v5-compatible simulator on loopback (see server.SimServer)."""
