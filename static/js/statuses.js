/** The states of a background job (a training run, an export) as the pages show them. */
export const ACTIVE = new Set(["queued", "running"]);
export const STATUS_LABELS = {
  queued: "Queued",
  running: "Running",
  done: "Done",
  failed: "Failed",
  cancelled: "Cancelled",
  expired: "Expired",
};
