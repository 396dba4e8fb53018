/** What every dashboard chart shares: Chart.js defaults (drawn at once, filling the box that
 * sets its height) and the Okabe-Ito colours, readable for colour-blind eyes. */
export const COLOURS = {
  blue: "#0072B2",
  vermilion: "#D55E00",
  green: "#009E73",
  purple: "#CC79A7",
  orange: "#E69F00",
  sky: "#56B4E9",
  black: "#000000",
  grey: "#999999",
};
/** One colour per series, in this order. */
export const SERIES = ["blue", "vermilion", "green", "purple", "orange", "sky", "black"].map(
  (name) => COLOURS[name],
);

// eslint-disable-next-line no-undef
Chart.defaults.animation = false;
// eslint-disable-next-line no-undef
Chart.defaults.maintainAspectRatio = false;

/** The JSON a page hands its script through json_script. */
export function pageData(id) {
  return JSON.parse(document.getElementById(id).textContent);
}

/** An error or share already in per cent as the pages write it: one decimal, a no-break
 * space, the sign ("4.3 %"); the template filter `percent` writes the same. */
export function formatPercent(value, digits = 1) {
  return value === null || value === undefined ? "—" : `${value.toFixed(digits)}\u00a0%`;
}

/** A colour of SERIES with an alpha channel, for shaded bands. */
export function shade(hex, alpha) {
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  return `rgba(${r}, ${g}, ${b}, ${alpha})`;
}

/** Legend options for line charts: each entry a short line drawn as its dataset's line is
 * (its colour, solid or dashed), where Chart.js would draw every entry solid; datasets with
 * `legend: false` (confidence bands) are left out. */
export function lineLegend(extra = {}) {
  return {
    ...extra,
    labels: {
      usePointStyle: true,
      pointStyleWidth: 36,
      generateLabels: (chart) =>
        // eslint-disable-next-line no-undef
        Chart.defaults.plugins.legend.labels
          .generateLabels(chart)
          .filter((item) => chart.data.datasets[item.datasetIndex].legend !== false)
          .map((item) => {
            const dataset = chart.data.datasets[item.datasetIndex];
            return {
              ...item,
              pointStyle: "line",
              lineDash: dataset.borderDash || [],
              lineWidth: 2,
              strokeStyle: dataset.borderColor,
            };
          }),
    },
  };
}
