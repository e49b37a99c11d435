"""Pure data: Bacalhau's wire models, enums, normalisation and validation. No I/O, no asyncio."""
