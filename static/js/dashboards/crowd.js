/** Crowd quality: histograms of workers' control-item and estimated accuracy. */
import { COLOURS, pageData } from "./charts.js";
const data = pageData("crowd-data");
const labels = data.bins.slice(0, -1).map((low, i) => `${low * 100}-${data.bins[i + 1] * 100} %`);

function histogram(id, counts, colour, title) {
  const canvas = document.getElementById(id);
  if (!canvas) return;
  // eslint-disable-next-line no-undef
  new Chart(canvas, {
    type: "bar",
    data: { labels, datasets: [{ label: "workers", backgroundColor: colour, data: counts }] },
    options: {
      plugins: { legend: { display: false } },
      scales: {
        x: { title: { display: true, text: title } },
        y: { beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: "workers" } },
      },
    },
  });
}

histogram("gold-chart", data.gold_accuracy, COLOURS.blue, "accuracy on control items");
histogram("em-chart", data.em_accuracy, COLOURS.green, "estimated accuracy");
