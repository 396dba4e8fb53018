"""Named operations that write: each one a transaction over the models it touches."""
