"""perpdesk console: the Textual app and the `perpdesk` command line.

Kept import-free on purpose: `perpdesk --headless`, `reconcile` and `report` enter through
console.cli and must not pay for importing Textual.
"""
