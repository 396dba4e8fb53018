"""The demo's operations: loading its data and driving a simulated crowd against the real API."""
