/** Shows an import report (counts and one row per file) in the markup of _report.html. */

export function summaryText(report) {
  return `${report.added} added, ${report.duplicates} duplicates, ${report.rejected} rejected`;
}

function row(item) {
  const tr = document.createElement("tr");
  tr.className = `row-${item.outcome}`;
  const name = document.createElement("td");
  name.className = "name";
  name.textContent = item.name;
  const outcome = document.createElement("td");
  const badge = document.createElement("span");
  badge.className = `badge badge-${item.outcome}`;
  badge.textContent = item.outcome;
  outcome.append(badge);
  const reason = document.createElement("td");
  reason.textContent = item.reason || "";
  tr.append(name, outcome, reason);
  return tr;
}

/** Fill the summary line and the table; lists at most `limit` rows. */
export function showReport(root, report, limit) {
  root.querySelector("#summary").textContent = summaryText(report);
  const rows = root.querySelector("#report-rows");
  rows.replaceChildren(...report.items.slice(0, limit).map(row));
  const hidden = Math.max(0, report.items.length - limit);
  root.querySelector("#rows-hidden-count").textContent = String(hidden);
  root.querySelector("#rows-hidden").hidden = hidden === 0;
}
