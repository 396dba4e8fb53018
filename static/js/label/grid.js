/** A grid of pictures (3x3): select every one that shows the category. */
import { button, el } from "./dom.js";

/** Render the grid into ``ui.body`` and ``ui.actions``; answers go to ``ui.submit``. */
export function renderGrid(task, ui) {
  const selected = task.items.map(() => false);
  const history = [];
  const grid = el("div", "label-grid");
  const count = el("span", "label-count");
  count.setAttribute("aria-live", "polite");

  const cells = task.items.map((item, index) => {
    const cell = el("button", "grid-cell");
    cell.type = "button";
    cell.setAttribute("aria-pressed", "false");
    cell.setAttribute("aria-label", `Picture ${index + 1}`);
    if (index < 9) cell.setAttribute("aria-keyshortcuts", String(index + 1));
    const image = el("img", "grid-image");
    image.src = item.image_url;
    image.alt = "";
    image.draggable = false;
    const number = el("span", "grid-key", String(index + 1));
    number.setAttribute("aria-hidden", "true");
    const check = el("span", "grid-check", "\u2713");
    check.setAttribute("aria-hidden", "true");
    cell.append(image, number, check);
    cell.addEventListener("click", () => toggle(index, true));
    return cell;
  });
  grid.append(...cells);
  ui.body.append(grid);

  function show() {
    cells.forEach((cell, index) => cell.setAttribute("aria-pressed", String(selected[index])));
    const n = selected.filter(Boolean).length;
    count.textContent = `${n} selected`;
    undoButton.disabled = history.length === 0;
  }

  function toggle(index, remember) {
    selected[index] = !selected[index];
    if (remember) history.push(index);
    show();
  }

  function undo() {
    if (history.length) toggle(history.pop(), false);
  }

  function send() {
    ui.submit(task.items.map((item, index) => ({ item: item.id, selected: selected[index] })));
  }

  const undoButton = button("Undo", { key: "Z", name: "Undo last selection", onClick: undo });
  const submitButton = button("Submit", {
    key: "Enter",
    className: "button-primary",
    onClick: send,
  });
  ui.actions.append(count, undoButton, submitButton);
  show();

  const keys = Math.min(9, task.items.length);
  return {
    legend: [
      [[`1\u2013${keys}`], "Select or unselect a picture (left to right, top to bottom)"],
      [["Z"], "Undo the last selection"],
      [["Enter"], "Submit"],
    ],
    handleKey(key) {
      const digit = Number(key);
      if (/^[1-9]$/.test(key) && digit <= keys) {
        toggle(digit - 1, true);
        return true;
      }
      if (key === "z" || key === "Z") {
        undo();
        return true;
      }
      if (key === "Enter") {
        send();
        return true;
      }
      return false;
    },
  };
}
