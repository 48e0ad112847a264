"""Ingest of the PBX's history: queue_log and CDR, incremental, idempotent, with entries derived."""
