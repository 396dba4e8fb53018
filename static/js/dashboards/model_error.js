/** Model error over time: Chart.js line charts of each run's top-1 and top-5 error against
 * the date it finished and against its labelled-set size, one colour per backbone and mode. */
import { SERIES, pageData } from "./charts.js";
const data = pageData("model-error-data");

function datasets(xOf) {
  const out = [];
  data.series.forEach((series, index) => {
    const runs = data.runs.filter((run) => run.series === series.name);
    const colour = SERIES[index % SERIES.length];
    for (const [metric, dash, label] of [
      ["top1_error", [], "top-1"],
      ["top5_error", [6, 4], "top-5"],
    ]) {
      out.push({
        label: `${series.name}, ${label}`,
        borderColor: colour,
        backgroundColor: colour,
        borderDash: dash,
        pointStyle: runs.map((run) => (run.current ? "rectRot" : "circle")),
        pointRadius: runs.map((run) => (run.current ? 8 : 4)),
        data: runs
          .map((run) => ({ x: xOf(run), y: run[metric] * 100, run }))
          .sort((a, b) => a.x - b.x),
      });
    }
  });
  return out;
}

function draw(canvasId, xOf, xTitle, tick, pad) {
  const canvas = document.getElementById(canvasId);
  if (!canvas) return;
  // one run (or runs at one x) would leave the axis to guess a range of years: pad it
  const xs = data.runs.map(xOf);
  const [low, high] = [Math.min(...xs), Math.max(...xs)];
  const padding = high > low ? 0 : pad(low);
  // eslint-disable-next-line no-undef
  new Chart(canvas, {
    type: "line",
    data: { datasets: datasets(xOf) },
    options: {
      parsing: false,
      scales: {
        x: {
          type: "linear",
          min: low - padding,
          max: high + padding,
          title: { display: true, text: xTitle },
          ticks: { callback: tick },
        },
        y: { min: 0, title: { display: true, text: "validation error (%)" } },
      },
      plugins: {
        legend: { labels: { usePointStyle: true, pointStyle: "line" } },
        tooltip: {
          callbacks: {
            label: (item) =>
              `run ${item.raw.run.id}: ${item.dataset.label} ${item.raw.y.toFixed(1)} %`,
          },
        },
      },
      onClick: (_event, elements, chart) => {
        if (!elements.length) return;
        const { datasetIndex, index } = elements[0];
        window.location.href = chart.data.datasets[datasetIndex].data[index].run.url;
      },
    },
  });
}

draw(
  "error-by-date",
  (run) => Date.parse(run.finished_at),
  "date the run finished",
  (value) => new Date(value).toISOString().slice(0, 16).replace("T", " "),
  () => 12 * 3600 * 1000,
);
draw(
  "error-by-size",
  (run) => run.labeled,
  "labelled images in its dataset version",
  (v) => v,
  (x) => Math.max(10, Math.round(x * 0.1)),
);
