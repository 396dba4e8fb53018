"""Pure rules of the micro-task engine: answer shapes, box geometry, quality gates."""
