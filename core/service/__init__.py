"""The engine as a service: one engine per journal folder (lock.py), its control socket and the
protocol a console attaches with (docs/service.md). No Textual here: core never imports the UI."""
