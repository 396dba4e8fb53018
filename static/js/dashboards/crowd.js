/** Crowd quality: histograms of workers' control-item and estimated accuracy. */
const data = JSON.parse(document.getElementById("crowd-data").textContent);
const labels = data.bins.slice(0, -1).map((low, i) => `${low * 100}-${data.bins[i + 1] * 100} %`);

function histogram(id, counts, colour, title) {
  const canvas = document.getElementById(id);
  if (!canvas) return;
  // eslint-disable-next-line no-undef
  new Chart(canvas, {
    type: "bar",
    data: { labels, datasets: [{ label: "workers", backgroundColor: colour, data: counts }] },
    options: {
      animation: false,
      maintainAspectRatio: false,
      plugins: { legend: { display: false } },
      scales: {
        x: { title: { display: true, text: title } },
        y: { beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: "workers" } },
      },
    },
  });
}

histogram("gold-chart", data.gold_accuracy, "#0072B2", "accuracy on control items");
histogram("em-chart", data.em_accuracy, "#009E73", "estimated accuracy");
