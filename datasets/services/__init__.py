"""Named operations on datasets: snapshots of accepted labels, exports, annotation imports."""
