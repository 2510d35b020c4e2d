"""Sans-IO protocol parsers: pure functions from bytes to parsed events, no socket code."""
