/** Labeling progress: a stacked bar per category (accepted, review, open, rejected) and the
 * crowd's label votes per hour. */
import { COLOURS, pageData } from "./charts.js";
const data = pageData("progress-data");
const STATES = [
  ["accepted", "accepted", COLOURS.green],
  ["review", "in review", COLOURS.orange],
  ["open", "open", COLOURS.sky],
  ["rejected", "rejected", COLOURS.grey],
];

const states = document.getElementById("states-chart");
if (states) {
  // a bar per category, each one labelled: the box grows with the categories
  states.parentElement.style.height = `${Math.max(320, data.categories.length * 22 + 90)}px`;
  // eslint-disable-next-line no-undef
  new Chart(states, {
    type: "bar",
    data: {
      labels: data.categories.map((c) => c.name),
      datasets: STATES.map(([key, label, colour]) => ({
        label,
        backgroundColor: colour,
        data: data.categories.map((c) => c[key]),
      })),
    },
    options: {
      indexAxis: "y",
      scales: {
        x: {
          stacked: true,
          ticks: { precision: 0 },
          title: { display: true, text: "candidates (images)" },
        },
        y: { stacked: true, ticks: { autoSkip: false } },
      },
    },
  });
}

const HOUR = 3600 * 1000;
const hourly = document.getElementById("hourly-chart");
if (hourly) {
  // every hour of the window gets a bar, an empty hour a zero one
  const votes = new Map(data.votes_per_hour.map((row) => [Date.parse(row.hour), row.votes]));
  const times = [...votes.keys()];
  const end = Math.max(Math.floor(Date.now() / HOUR) * HOUR, ...times);
  const start = Math.min(end - data.hours * HOUR, ...times);
  const bars = [];
  for (let t = start; t <= end; t += HOUR) bars.push({ x: t + HOUR / 2, y: votes.get(t) || 0 });
  // eslint-disable-next-line no-undef
  new Chart(hourly, {
    type: "bar",
    data: {
      datasets: [
        {
          label: "label votes",
          backgroundColor: COLOURS.blue,
          barPercentage: 1,
          categoryPercentage: 0.9,
          // each bar spans its hour
          data: bars,
        },
      ],
    },
    options: {
      parsing: false,
      scales: {
        x: {
          type: "linear",
          min: start,
          max: end + HOUR,
          title: { display: true, text: "hour (UTC)" },
          ticks: {
            stepSize: 6 * HOUR,
            callback: (v) => `${new Date(v).toISOString().slice(5, 13).replace("T", " ")}h`,
          },
        },
        y: {
          beginAtZero: true,
          ticks: { precision: 0 },
          title: { display: true, text: "votes per hour" },
        },
      },
    },
  });
}
