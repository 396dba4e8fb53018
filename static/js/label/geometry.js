/** Box geometry in image pixels, pure: a box is [x0, y0, x1, y1] with x0 < x1 and y0 < y1. */

export const MIN_SIDE = 2; // image px, the server's smallest box side

export const clamp = (value, low, high) => Math.min(high, Math.max(low, value));

const round = (value) => Math.round(value * 10) / 10;

/** The box spanned by two corner points ``{ x, y }``, whichever way it was dragged. */
export function normalise(a, b) {
  return [Math.min(a.x, b.x), Math.min(a.y, b.y), Math.max(a.x, b.x), Math.max(a.y, b.y)];
}

export function bigEnough(box) {
  return box[2] - box[0] >= MIN_SIDE && box[3] - box[1] >= MIN_SIDE;
}

/** ``box`` shifted by the drag from ``from`` to ``to``, kept inside width x height. */
export function moved(box, from, to, width, height) {
  const dx = clamp(to.x - from.x, -box[0], width - box[2]);
  const dy = clamp(to.y - from.y, -box[1], height - box[3]);
  return [box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy];
}

/** ``box`` with its ``corner`` ("nw", "ne", "sw" or "se") dragged to ``to``. */
export function resized(box, corner, to) {
  const fixed = {
    x: corner.includes("w") ? box[2] : box[0],
    y: corner.includes("n") ? box[3] : box[1],
  };
  return normalise(fixed, to);
}

/** Boxes as the API takes them: inside the image, 0.1 px steps, none under MIN_SIDE. */
export function boxesForAnswer(boxes, width, height) {
  return boxes
    .map(([x0, y0, x1, y1]) => [
      round(clamp(x0, 0, width)),
      round(clamp(y0, 0, height)),
      round(clamp(x1, 0, width)),
      round(clamp(y1, 0, height)),
    ])
    .filter(bigEnough);
}
