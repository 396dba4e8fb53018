/** Yes/no questions about one image: verify, verify_box (one box drawn) and coverage (all). */
import { button } from "./dom.js";
import { boxOutline, imageFigure } from "./figure.js";

function choices(task) {
  const name = task.category.name;
  if (task.kind === "verify") {
    return [
      { answer: "yes", key: "Y", label: "Yes", name: `Yes, there is a ${name}` },
      { answer: "no", key: "N", label: "No", name: `No ${name}` },
      { answer: "unsure", key: "U", label: "Can't tell", name: "Can't tell" },
    ];
  }
  if (task.kind === "coverage") {
    return [
      { answer: "yes", key: "Y", label: `Yes, every ${name} is boxed` },
      { answer: "no", key: "N", label: "No, one is missing" },
    ];
  }
  return [
    { answer: "yes", key: "Y", label: "Yes, tight" },
    { answer: "no", key: "N", label: "No" },
  ];
}

function shownBoxes(task, item) {
  if (task.kind === "verify_box") return item.box ? [item.box] : [];
  if (task.kind === "coverage") return item.boxes || [];
  return [];
}

/** Render the question into ``ui.body`` and ``ui.actions``; answers go to ``ui.submit``. */
export function renderChoice(task, ui) {
  const [item] = task.items;
  const { figure, overlay } = imageFigure(item, `Picture to check for a ${task.category.name}`);
  overlay.classList.add("label-overlay-static");
  overlay.append(...shownBoxes(task, item).map((box) => boxOutline(box, item)));
  ui.body.append(figure);

  const options = choices(task);
  const send = (answer) => ui.submit([{ item: item.id, answer }]);
  ui.actions.append(
    ...options.map((option) =>
      button(option.label, {
        key: option.key,
        name: option.name,
        className: `choice choice-${option.answer}`,
        onClick: () => send(option.answer),
      }),
    ),
  );
  const byKey = new Map(options.map((option) => [option.key.toLowerCase(), option.answer]));
  return {
    legend: options.map((option) => [[option.key], option.label]),
    handleKey(key) {
      const answer = byKey.get(key.toLowerCase());
      if (!answer) return false;
      send(answer);
      return true;
    },
  };
}
