/**
 * Drawing boxes on one image with pointer events (mouse, pen and touch alike): drag on the
 * picture to draw, click a box to select it, drag it to move, drag a corner to resize.
 * Boxes are kept in image pixels (the item's width and height), whatever the zoom.
 */
import { button, el } from "./dom.js";
import { imageFigure, placeBox, setZoom } from "./figure.js";
import { bigEnough, boxesForAnswer, clamp, moved, normalise, resized } from "./geometry.js";

const MIN_DRAG = 4; // screen px a drag must cover before it draws or moves a box
const ZOOMS = [1, 1.5, 2, 3, 4];
const CORNERS = ["nw", "ne", "sw", "se"];

/** Render the drawing tool into ``ui.body`` and ``ui.actions``; answers go to ``ui.submit``. */
export function renderDraw(task, ui) {
  const [item] = task.items;
  const name = task.category.name;
  const { figure, overlay } = imageFigure(item, `Picture to draw ${name} boxes on`);
  overlay.classList.add("label-overlay-draw");
  const stage = el("div", "label-stage");
  stage.append(figure);
  ui.body.append(stage);

  let boxes = [];
  let selected = -1;
  let zoom = 0;
  let drag = null;
  const history = [];

  function remember() {
    history.push({ boxes: boxes.map((box) => [...box]), selected });
  }

  function boxElement(box, index, isSelected) {
    const element = el("div", isSelected ? "label-box draw-box selected" : "label-box draw-box");
    element.dataset.index = String(index);
    placeBox(element, box, item);
    if (isSelected) {
      for (const corner of CORNERS) {
        const handle = el("span", `handle handle-${corner}`);
        handle.dataset.corner = corner;
        element.append(handle);
      }
    }
    return element;
  }

  function show() {
    const shown = boxes.map((box, index) => boxElement(box, index, index === selected));
    if (drag && drag.mode === "new" && drag.box) {
      shown.push(boxElement(drag.box, boxes.length, false));
    }
    overlay.replaceChildren(...shown);
    const noun = boxes.length === 1 ? "box" : "boxes";
    count.textContent = `${boxes.length} ${noun}`;
    undoButton.disabled = history.length === 0;
    deleteButton.disabled = selected < 0;
    zoomLevel.textContent = `${Math.round(ZOOMS[zoom] * 100)}%`;
    zoomOut.disabled = zoom === 0;
    zoomIn.disabled = zoom === ZOOMS.length - 1;
  }

  function pointAt(event) {
    const rect = overlay.getBoundingClientRect();
    return {
      x: clamp(((event.clientX - rect.left) / rect.width) * item.width, 0, item.width),
      y: clamp(((event.clientY - rect.top) / rect.height) * item.height, 0, item.height),
    };
  }

  overlay.addEventListener("pointerdown", (event) => {
    if (event.pointerType === "mouse" && event.button !== 0) return;
    event.preventDefault();
    overlay.setPointerCapture(event.pointerId);
    const point = pointAt(event);
    const handle = event.target.closest(".handle");
    const boxTarget = event.target.closest(".draw-box");
    const screen = { x: event.clientX, y: event.clientY };
    const base = { pointer: event.pointerId, start: point, screen, changed: false };
    if (handle && boxTarget) {
      const index = Number(boxTarget.dataset.index);
      drag = { ...base, mode: "resize", index, corner: handle.dataset.corner };
    } else if (boxTarget) {
      selected = Number(boxTarget.dataset.index);
      drag = { ...base, mode: "move", index: selected };
    } else {
      selected = -1;
      drag = { ...base, mode: "new" };
    }
    if (drag.mode !== "new") drag.original = [...boxes[drag.index]];
    show();
  });

  overlay.addEventListener("pointermove", (event) => {
    if (!drag || event.pointerId !== drag.pointer) return;
    const point = pointAt(event);
    const far = Math.hypot(event.clientX - drag.screen.x, event.clientY - drag.screen.y);
    if (drag.mode === "new") {
      if (!drag.box && far < MIN_DRAG) return;
      drag.box = normalise(drag.start, point);
    } else {
      if (drag.mode === "move" && !drag.changed && far < MIN_DRAG) return;
      if (!drag.changed) remember();
      drag.changed = true;
      boxes[drag.index] =
        drag.mode === "move"
          ? moved(drag.original, drag.start, point, item.width, item.height)
          : resized(drag.original, drag.corner, point);
    }
    show();
  });

  function finish(event, cancelled) {
    if (!drag || event.pointerId !== drag.pointer) return;
    const done = drag;
    drag = null;
    if (done.mode === "new" && done.box && !cancelled && bigEnough(done.box)) {
      remember();
      boxes.push(done.box);
      selected = boxes.length - 1;
    } else if (done.mode !== "new" && done.changed) {
      if (cancelled || !bigEnough(boxes[done.index])) boxes[done.index] = done.original;
    }
    show();
  }
  overlay.addEventListener("pointerup", (event) => finish(event, false));
  overlay.addEventListener("pointercancel", (event) => finish(event, true));

  function undo() {
    const last = history.pop();
    if (!last) return;
    boxes = last.boxes;
    selected = last.selected;
    show();
  }

  function removeSelected() {
    if (selected < 0) return;
    remember();
    boxes.splice(selected, 1);
    selected = -1;
    show();
  }

  function setZoomStep(step) {
    zoom = clamp(zoom + step, 0, ZOOMS.length - 1);
    setZoom(figure, item, ZOOMS[zoom]);
    show();
  }

  function send() {
    if (boxes.length === 0) {
      ui.notify(`Draw a box around each ${name}, or choose \u201cNone present\u201d (0).`);
      return;
    }
    ui.submit([{ item: item.id, boxes: boxesForAnswer(boxes, item.width, item.height) }]);
  }

  function nonePresent() {
    if (boxes.length > 0) {
      ui.notify("Delete your boxes first (Z or Delete), or submit them with Enter.");
      return;
    }
    ui.submit([{ item: item.id, boxes: [] }]);
  }

  const count = el("span", "label-count");
  count.setAttribute("aria-live", "polite");
  const zoomOut = button("\u2212", { key: "-", name: "Zoom out", onClick: () => setZoomStep(-1) });
  const zoomIn = button("+", { key: "+", name: "Zoom in", onClick: () => setZoomStep(1) });
  const zoomLevel = el("output", "zoom-level");
  zoomLevel.setAttribute("aria-label", "Zoom");
  const zoomGroup = el("div", "zoom-group");
  zoomGroup.setAttribute("role", "group");
  zoomGroup.setAttribute("aria-label", "Zoom");
  zoomOut.classList.add("zoom-button");
  zoomIn.classList.add("zoom-button");
  zoomGroup.append(zoomOut, zoomLevel, zoomIn);
  const undoButton = button("Undo", { key: "Z", name: "Undo last change", onClick: undo });
  const deleteButton = button("Delete", {
    key: "Del",
    name: "Delete selected box",
    onClick: removeSelected,
  });
  const noneButton = button("None present", {
    key: "0",
    name: `None present: no ${name} in this picture`,
    onClick: nonePresent,
  });
  const submitButton = button("Submit boxes", {
    key: "Enter",
    name: "Submit boxes",
    className: "button-primary",
    onClick: send,
  });
  const tools = el("div", "draw-tools");
  tools.append(zoomGroup, count, undoButton, deleteButton);
  ui.actions.append(tools, noneButton, submitButton);
  show();

  return {
    legend: [
      [["Drag"], "Draw a box; drag a box to move it, a corner to resize it"],
      [["Delete", "Backspace"], "Delete the selected box"],
      [["Z"], "Undo the last change"],
      [["+", "\u2212"], "Zoom in and out"],
      [["0"], "None present"],
      [["Enter"], "Submit the boxes"],
    ],
    handleKey(key) {
      const actions = {
        Delete: removeSelected,
        Backspace: removeSelected,
        z: undo,
        Z: undo,
        "+": () => setZoomStep(1),
        "=": () => setZoomStep(1),
        "-": () => setZoomStep(-1),
        0: nonePresent,
        Enter: send,
        Escape: () => {
          selected = -1;
          show();
        },
      };
      if (!Object.hasOwn(actions, key)) return false;
      actions[key]();
      return true;
    },
  };
}
