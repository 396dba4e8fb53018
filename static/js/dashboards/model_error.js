/** Model error over time, as ILSVRC's chart: each run's top-1 (solid) and top-5 (dashed) error
 * on each evaluation set version, one colour per version with its Wilson 95 % band (computed
 * on the server), against the labelled images the run trained on and against the date it
 * finished. Every point carries its run: the current model's diamond and a click follow the
 * run, whatever order the points are drawn in. */
import { SERIES, formatPercent, lineLegend, pageData, shade } from "./charts.js";

const data = pageData("model-error-data");
const METRICS = [
  { key: "top1", name: "top-1", dash: [], alpha: 0.2 },
  { key: "top5", name: "top-5", dash: [6, 4], alpha: 0.1 },
];
const MINUTE = 60 * 1000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
// tick steps for the date axis, round in UTC: minutes (a demo retrains every few), hours, days
const STEPS = [
  ...[1, 2, 5, 10, 15, 30].map((minutes) => minutes * MINUTE),
  ...[1, 2, 3, 6, 12].map((hours) => hours * HOUR),
  ...[1, 2, 7, 14, 30, 90, 365].map((days) => days * DAY),
];
const MAX_TICKS = 7;

/** Three datasets per evaluation version and metric: the band's low and high edges (the high
 * one filled down to the low one) and the line itself. */
function datasets(xOf) {
  const out = [];
  data.series.forEach((series, index) => {
    const colour = SERIES[index % SERIES.length];
    const points = data.points
      .filter((point) => point.evaluation === series.id)
      .sort((a, b) => xOf(a) - xOf(b) || Date.parse(a.finished_at) - Date.parse(b.finished_at));
    for (const metric of METRICS) {
      const edge = (side) =>
        points.map((run) => ({ x: xOf(run), y: run[`${metric.key}_${side}`] * 100, run }));
      const band = {
        legend: false,
        role: "band",
        series: series.id,
        metric: metric.key,
        borderWidth: 0,
        pointRadius: 0,
        pointHitRadius: 0,
        backgroundColor: shade(colour, metric.alpha),
      };
      const name = `${series.label}, ${metric.name}, 95 %`;
      out.push({ ...band, label: `${name} low`, data: edge("low"), fill: false });
      out.push({ ...band, label: `${name} high`, data: edge("high"), fill: "-1" });
      out.push({
        role: "line",
        series: series.id,
        metric: metric.key,
        label: `${series.label}, ${metric.name}`,
        borderColor: colour,
        backgroundColor: colour,
        borderDash: metric.dash,
        borderWidth: 2,
        fill: false,
        clip: false, // the current model's diamond is drawn whole at the chart's edge
        // bound to the point's own run, not to its place in the array
        pointStyle: (context) => (context.raw && context.raw.run.current ? "rectRot" : "circle"),
        pointRadius: (context) => (context.raw && context.raw.run.current ? 8 : 3),
        pointHoverRadius: (context) => (context.raw && context.raw.run.current ? 10 : 5),
        data: points.map((run) => ({ x: xOf(run), y: run[`${metric.key}_error`] * 100, run })),
      });
    }
  });
  return out;
}

/** The date axis's step: the smallest round one that keeps it to MAX_TICKS labels. */
function dateStep(low, high) {
  return STEPS.find((step) => (high - low) / step <= MAX_TICKS) || STEPS[STEPS.length - 1];
}

function dateTicks(scale) {
  const step = dateStep(scale.min, scale.max);
  const ticks = [];
  for (let value = Math.ceil(scale.min / step) * step; value <= scale.max; value += step) {
    ticks.push({ value });
  }
  scale.ticks = ticks;
}

/** A date tick: the day (UTC), and the time on a second line when the step is under a day. */
function dateLabel(value, step) {
  const iso = new Date(value).toISOString();
  return step < DAY ? [iso.slice(0, 10), iso.slice(11, 16)] : iso.slice(0, 10);
}

function range(xs, padOne) {
  const [low, high] = [Math.min(...xs), Math.max(...xs)];
  const padding = high > low ? (high - low) * 0.05 : padOne(low);
  return [low - padding, high + padding];
}

function tooltipLabel(item) {
  const { run } = item.raw;
  const { metric } = item.dataset;
  const low = formatPercent(run[`${metric}_low`] * 100);
  const high = formatPercent(run[`${metric}_high`] * 100);
  const error = formatPercent(item.raw.y);
  return `run ${run.id}: ${item.dataset.label} ${error} (95 %: ${low} – ${high})`;
}

/** A legend click hides or shows a line with its band (the two datasets before it). */
function toggleWithBand(_event, item, legend) {
  const { chart } = legend;
  const visible = chart.isDatasetVisible(item.datasetIndex);
  for (const index of [item.datasetIndex - 2, item.datasetIndex - 1, item.datasetIndex]) {
    chart.setDatasetVisibility(index, !visible);
  }
  chart.update();
}

function draw(canvasId, xOf, xTitle, axis) {
  const canvas = document.getElementById(canvasId);
  if (!canvas) return;
  const [min, max] = range(data.points.map(xOf), axis.padOne);
  // eslint-disable-next-line no-undef
  new Chart(canvas, {
    type: "line",
    data: { datasets: datasets(xOf) },
    options: {
      parsing: false,
      layout: { padding: { top: 10, right: 12 } },
      scales: {
        x: {
          type: "linear",
          min,
          max,
          title: { display: true, text: xTitle },
          afterBuildTicks: axis.ticks,
          ticks: {
            autoSkip: true,
            autoSkipPadding: 16,
            maxRotation: 0,
            includeBounds: false, // the padded ends are no round numbers
            callback: axis.label,
          },
        },
        y: { min: 0, title: { display: true, text: "error on the evaluation set (%)" } },
      },
      plugins: {
        legend: lineLegend({ onClick: toggleWithBand }),
        tooltip: {
          filter: (item) => item.dataset.role === "line",
          callbacks: { label: tooltipLabel },
        },
      },
      onClick: (_event, elements, chart) => {
        const hit = elements.find((e) => chart.data.datasets[e.datasetIndex].role === "line");
        if (hit) {
          window.location.href = chart.data.datasets[hit.datasetIndex].data[hit.index].run.url;
        }
      },
    },
  });
}

draw("error-by-size", (run) => run.labeled, "labelled images in the run's dataset version", {
  padOne: (x) => Math.max(10, Math.round(x * 0.1)),
  ticks: undefined,
  label: (value) => Number(value).toLocaleString("en"),
});
draw("error-by-date", (run) => Date.parse(run.finished_at), "date the run finished (UTC)", {
  padOne: () => 12 * HOUR,
  ticks: dateTicks,
  label(value) {
    return dateLabel(value, dateStep(this.min, this.max));
  },
});
