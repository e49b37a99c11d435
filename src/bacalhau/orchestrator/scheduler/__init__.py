"""Schedulers: pure functions of (evaluation, read-only snapshot) -> Plan. No I/O here."""
