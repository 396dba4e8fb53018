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
