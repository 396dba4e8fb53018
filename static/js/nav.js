// The curator nav's groups are <details> menus and work without this file. It only tidies
// them: one open at a time, closed by Escape (focus back on its summary) or a click elsewhere.
const groups = [...document.querySelectorAll(".nav-group details")];

for (const group of groups) {
  group.addEventListener("toggle", () => {
    if (!group.open) return;
    for (const other of groups) if (other !== group) other.open = false;
  });
  group.addEventListener("keydown", (event) => {
    if (event.key !== "Escape" || !group.open) return;
    group.open = false;
    group.querySelector("summary").focus();
  });
}

document.addEventListener("click", (event) => {
  for (const group of groups) if (!group.contains(event.target)) group.open = false;
});
