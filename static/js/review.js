/** Review queue: Y and N decide the first item on the page with one key press. */
document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const target = event.target;
  if (target instanceof HTMLElement && target.closest("input, textarea, select")) return;
  const key = event.key.toLowerCase();
  if (key !== "y" && key !== "n") return;
  const button = document.querySelector(`.review-item button[data-key="${key}"]`);
  if (!button) return;
  event.preventDefault();
  button.click();
});
