// knob's dashboard: the experiments list and an experiment's page, read from knobd's API and
// refreshed every few seconds. Charts are Chart.js, from Debian's libjs-chart.js.
"use strict";

const FINISHED = new Set(["Succeeded", "Failed", "EarlyStopped", "MetricsUnavailable", "Killed"]);
// Trials whose objective value is a result of the search (an early-stopped trial reports its last value).
const COMPLETED = new Set(["Succeeded", "EarlyStopped"]);
const REFRESH_MS = 2000;

// The token came in the address (?token=…) and is now a cookie: keep it out of the history and of screenshots.
if (new URLSearchParams(location.search).has("token")) history.replaceState(null, "", location.pathname);

async function getJSON(path) {
  const response = await fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (!response.ok) {
    let message = `${path}: ${response.status}`;
    try { message = (await response.json()).error.message; } catch (_) { /* not JSON */ }
    throw new Error(message);
  }
  return response.json();
}

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function number(value) {
  return value === null || value === undefined ? "" : String(Number(value.toPrecision(6)));
}

function time(text) {
  return text ? new Date(text).toLocaleString() : "";
}

// A status or state as a badge in its cell.
function statusCell(text) {
  const cell = element("td");
  cell.append(element("span", text, `status ${text}`));
  return cell;
}

// How long from `start` to `end` (or now), as "2h 05m", "3m 09s" or "12s".
function span(start, end) {
  if (!start) return "";
  const seconds = Math.max(0, Math.round(((end ? new Date(end) : new Date()) - new Date(start)) / 1000));
  const [h, m, s] = [Math.floor(seconds / 3600), Math.floor(seconds / 60) % 60, seconds % 60];
  const two = (n) => String(n).padStart(2, "0");
  return h ? `${h}h ${two(m)}m` : m ? `${m}m ${two(s)}s` : `${s}s`;
}

function finishedCount(counts) {
  return Object.entries(counts).filter(([state]) => FINISHED.has(state)).reduce((sum, [, n]) => sum + n, 0);
}

function showProblem(error) {
  const problem = document.getElementById("problem");
  problem.textContent = error ? String(error.message || error) : "";
  problem.hidden = !error;
}

// Runs `refresh` now and again every REFRESH_MS, one call at a time.
function poll(refresh) {
  const step = async () => {
    try { await refresh(); showProblem(null); } catch (error) { showProblem(error); }
    setTimeout(step, REFRESH_MS);
  };
  step();
}

// MARK: The experiments list

let experimentsSeen = "";

async function refreshExperiments() {
  const experiments = await getJSON("/v1/experiments");
  const seen = JSON.stringify(experiments);
  if (seen === experimentsSeen) return;
  experimentsSeen = seen;
  const body = document.querySelector("#experiments tbody");
  body.replaceChildren(...experiments.map((experiment) => {
    const row = element("tr");
    const link = element("a", experiment.name);
    link.href = `/experiments/${encodeURIComponent(experiment.name)}`;
    row.append(element("td"), statusCell(experiment.status), element("td", experiment.algorithm),
      element("td", `${finishedCount(experiment.trials)} / ${experiment.budget.maxTrialCount ?? "∞"}`, "number"),
      element("td", number(experiment.bestObjectiveValue), "number"), element("td", time(experiment.startedAt || experiment.createdAt)),
      element("td", span(experiment.startedAt || experiment.createdAt, experiment.completedAt), "number"));
    row.firstChild.append(link);
    return row;
  }));
  document.getElementById("empty").hidden = experiments.length > 0;
}

// MARK: An experiment's page

const page = { chart: null, intermediate: null, trials: [], parameters: [], sort: { column: 0, descending: false }, maximize: true, seen: "" };

function bestSoFar(points, maximize) {
  let best = null;
  return points.map((point) => {
    if (best === null || (maximize ? point.y > best : point.y < best)) best = point.y;
    return { x: point.x, y: best };
  });
}

function drawHistory(experiment, trials) {
  const points = trials.filter((t) => COMPLETED.has(t.state) && t.objectiveValue !== undefined && t.objectiveValue !== null)
    .sort((a, b) => a.sequence - b.sequence).map((t) => ({ x: t.sequence, y: t.objectiveValue, trial: t.name }));
  const best = bestSoFar(points, page.maximize);
  if (!page.chart) {
    const metric = experiment.objective.split(" ").slice(1).join(" ");
    page.chart = new Chart(document.getElementById("history"), {
      type: "scatter",
      data: { datasets: [
        { label: "objective", data: points, backgroundColor: "#2f6fb0", pointRadius: 4 },
        { type: "line", label: "best so far", data: best, borderColor: "#d1495b", backgroundColor: "#d1495b", stepped: true, pointRadius: 0, borderWidth: 2 },
      ] },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false,
        scales: { x: { title: { display: true, text: "trial" }, ticks: { precision: 0 } }, y: { title: { display: true, text: metric } } },
        plugins: { tooltip: { callbacks: { label: (item) => `${item.raw.trial || "best"}: ${number(item.raw.y)}` } } },
      },
    });
  } else {
    page.chart.data.datasets[0].data = points;
    page.chart.data.datasets[1].data = best;
    page.chart.update("none");
  }
}

// Each trial's reports of the objective metric by step, one line per trial; an early-stopped trial's
// last report is a cross, where it was stopped.
function drawIntermediate(experiment, reports, trials) {
  const byTrial = new Map();
  for (const report of reports) {
    if (!byTrial.has(report.trialName)) byTrial.set(report.trialName, []);
    byTrial.get(report.trialName).push({ x: report.step, y: report.value });
  }
  const states = new Map(trials.map((t) => [t.name, t.state]));
  const datasets = [...byTrial].map(([name, points], index) => {
    points.sort((a, b) => a.x - b.x);
    const stopped = states.get(name) === "EarlyStopped";
    const last = (k) => stopped && k === points.length - 1;
    const color = `hsl(${(index * 47) % 360} 60% 42%)`;
    return { label: name, data: points, borderColor: color, backgroundColor: color, borderWidth: 1.5,
      pointStyle: points.map((_, k) => (last(k) ? "crossRot" : "circle")), pointRadius: points.map((_, k) => (last(k) ? 8 : 2)) };
  });
  if (!page.intermediate) {
    const metric = experiment.objective.split(" ").slice(1).join(" ");
    page.intermediate = new Chart(document.getElementById("intermediate"), {
      type: "line", data: { datasets },
      options: { animation: false, responsive: true, maintainAspectRatio: false,
        scales: { x: { type: "linear", title: { display: true, text: "step" }, ticks: { precision: 0 } }, y: { title: { display: true, text: metric } } },
        plugins: { legend: { display: datasets.length <= 12 } } },
    });
  } else {
    page.intermediate.data.datasets = datasets;
    page.intermediate.options.plugins.legend.display = datasets.length <= 12;
    page.intermediate.update("none");
  }
}

// The table's columns: a header and how to read a trial's cell (a number or text, compared as such).
function columns() {
  const duration = (t) => (t.startedAt && t.completedAt ? (new Date(t.completedAt) - new Date(t.startedAt)) / 1000 : null);
  return [
    { title: "#", value: (t) => t.sequence },
    { title: "Trial", value: (t) => t.name },
    { title: "State", value: (t) => t.state },
    { title: "Objective", value: (t) => t.objectiveValue ?? null },
    ...page.parameters.map((name) => ({
      title: name,
      value: (t) => {
        const text = (t.assignments.find((a) => a.name === name) || {}).value;
        return text !== undefined && text !== "" && !isNaN(Number(text)) ? Number(text) : (text ?? null);
      },
    })),
    { title: "Started", value: (t) => t.startedAt || null, show: time },
    { title: "Duration (s)", value: duration },
  ];
}

function compare(a, b) {
  if (a === b) return 0;
  if (a === null) return 1;
  if (b === null) return -1;
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(a).localeCompare(String(b));
}

function drawTable() {
  const cols = columns();
  const head = document.querySelector("#trials thead tr");
  if (head.children.length !== cols.length) {
    head.replaceChildren(...cols.map((column, index) => {
      const th = element("th", column.title);
      th.addEventListener("click", () => {
        page.sort = { column: index, descending: page.sort.column === index ? !page.sort.descending : false };
        drawTable();
      });
      return th;
    }));
  }
  [...head.children].forEach((th, index) => {
    if (index === page.sort.column) th.setAttribute("aria-sort", page.sort.descending ? "descending" : "ascending");
    else th.removeAttribute("aria-sort");
  });
  const state = document.getElementById("state-filter").value;
  const sortColumn = cols[page.sort.column] || cols[0];
  const rows = page.trials.filter((t) => !state || t.state === state).sort((a, b) => {
    const order = compare(sortColumn.value(a), sortColumn.value(b));
    // Empty cells stay last whichever way the column is sorted.
    if (sortColumn.value(a) === null || sortColumn.value(b) === null) return order;
    return page.sort.descending ? -order : order;
  });
  document.querySelector("#trials tbody").replaceChildren(...rows.map((t) => {
    const row = element("tr");
    row.dataset.trial = t.name;
    for (const column of cols) {
      const value = column.value(t);
      const text = column.show ? column.show(value) : typeof value === "number" && column.title !== "#" ? number(value) : value;
      if (column.title === "Trial") {
        const cell = element("td");
        const link = element("a", value);
        link.href = `${location.pathname}/trials/${encodeURIComponent(value)}`;
        cell.append(link);
        row.append(cell);
      } else {
        row.append(column.title === "State" ? statusCell(value) : element("td", text, typeof value === "number" ? "number" : undefined));
      }
    }
    return row;
  }));
  document.getElementById("shown").textContent = `${rows.length} of ${page.trials.length} trials`;
}

function drawStateFilter() {
  const select = document.getElementById("state-filter");
  const states = [...new Set(page.trials.map((t) => t.state))].sort();
  const present = [...select.options].slice(1).map((o) => o.value);
  if (states.join() === present.join()) return;
  const chosen = select.value;
  select.replaceChildren(...["", ...states].map((state) => {
    const option = element("option", state || "all");
    option.value = state;
    return option;
  }));
  select.value = states.includes(chosen) ? chosen : "";
}

function csvField(value) {
  const text = value === null || value === undefined ? "" : String(value);
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

// Every trial (whatever the filter), with each parameter and every metric's latest value.
function trialsCSV() {
  const metrics = [...new Set(page.trials.flatMap((t) => t.observation.map((m) => m.name)))].sort();
  const header = ["sequence", "name", "state", "reason", "objective", ...page.parameters, ...metrics, "startedAt", "completedAt"];
  const lines = [header.map(csvField).join(",")];
  for (const t of [...page.trials].sort((a, b) => a.sequence - b.sequence)) {
    const parameters = page.parameters.map((name) => (t.assignments.find((a) => a.name === name) || {}).value);
    const latest = metrics.map((name) => (t.observation.find((m) => m.name === name) || {}).latest);
    lines.push([t.sequence, t.name, t.state, t.reason, t.objectiveValue, ...parameters, ...latest, t.startedAt, t.completedAt].map(csvField).join(","));
  }
  return lines.join("\r\n") + "\r\n";
}

function exportCSV() {
  const link = element("a");
  link.href = URL.createObjectURL(new Blob([trialsCSV()], { type: "text/csv" }));
  link.download = `${document.getElementById("title").textContent}-trials.csv`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

function drawSummary(experiment) {
  document.title = `knob: ${experiment.name}`;
  document.getElementById("name").textContent = experiment.name;
  document.getElementById("title").textContent = experiment.name;
  const status = document.getElementById("status");
  status.textContent = experiment.status;
  status.className = `status ${experiment.status}`;
  document.getElementById("message").textContent = [experiment.reason, experiment.message].filter(Boolean).join(": ");
  document.getElementById("algorithm").textContent = experiment.algorithm + (experiment.earlyStopping ? `, early stopping ${experiment.earlyStopping}` : "");
  document.getElementById("objective").textContent = experiment.objective + (experiment.goal !== undefined ? `, goal ${experiment.goal}` : "");
  const budget = experiment.budget;
  document.getElementById("budget").textContent = `${budget.maxTrialCount ?? "unlimited"} trials, ${budget.parallelTrialCount} at once`
    + (budget.maxFailedTrialCount !== undefined ? `, at most ${budget.maxFailedTrialCount} failed` : "");
  document.getElementById("counts").textContent = Object.entries(experiment.trials).sort().map(([state, n]) => `${state} ${n}`).join(", ") || "none yet";
  const best = experiment.currentOptimalTrial;
  document.getElementById("best").textContent = best && best.bestTrialName
    ? `${best.bestTrialName}: ${number(experiment.bestObjectiveValue)} with ${(best.parameterAssignments || []).map((a) => `${a.name}=${a.value}`).join(", ")}`
    : "none yet";
  document.getElementById("events").replaceChildren(...(experiment.events || []).map((event) =>
    element("li", `${time(event.time)}  ${event.kind}${event.trialName ? ` ${event.trialName}` : ""}: ${event.message}`)));
}

async function refreshExperiment(name) {
  const path = `/v1/experiments/${encodeURIComponent(name)}`;
  const [experiment, trials, reports] = await Promise.all([getJSON(path), getJSON(`${path}/trials`), getJSON(`${path}/metrics`)]);
  drawSummary(experiment);
  // Redrawn only when something changed, so that a reader's selection or scroll stays put.
  const seen = JSON.stringify([trials, reports]);
  if (seen === page.seen) return;
  page.seen = seen;
  page.maximize = experiment.objective.startsWith("maximize");
  page.trials = trials;
  page.parameters = [...new Set(trials.flatMap((t) => t.assignments.map((a) => a.name)))];
  drawHistory(experiment, trials);
  drawIntermediate(experiment, reports, trials);
  drawStateFilter();
  drawTable();
}

// MARK: A trial's page

// The log's tail shown: a trial that prints much would otherwise make every refresh heavy.
const LOG_TAIL = 200000;
const trialPage = { chart: null, seen: "", ended: false };

function drawMetrics(reports) {
  const names = [...new Set(reports.map((r) => r.name))].sort();
  const palette = ["#2f6fb0", "#d1495b", "#3f9b4f", "#e08e0b", "#7a4fb3", "#00798c"];
  const datasets = names.map((name, index) => ({
    label: name, borderColor: palette[index % palette.length], backgroundColor: palette[index % palette.length], pointRadius: 3,
    data: reports.filter((r) => r.name === name && r.value !== undefined && r.value !== null).sort((a, b) => a.step - b.step)
      .map((r) => ({ x: r.step, y: r.value })),
  }));
  if (!trialPage.chart) {
    trialPage.chart = new Chart(document.getElementById("metrics"), {
      type: "line", data: { datasets },
      options: { animation: false, responsive: true, maintainAspectRatio: false, parsing: true,
        scales: { x: { type: "linear", title: { display: true, text: "step" }, ticks: { precision: 0 } } } },
    });
  } else {
    trialPage.chart.data.datasets = datasets;
    trialPage.chart.update("none");
  }
}

async function refreshTrial(experiment, name) {
  if (trialPage.ended) return;
  const path = `/v1/experiments/${encodeURIComponent(experiment)}/trials/${encodeURIComponent(name)}`;
  const [trial, reports] = await Promise.all([getJSON(path), getJSON(`${path}/metrics`)]);
  const response = await fetch(`${path}/logs`, { credentials: "same-origin" });
  const log = response.ok ? await response.text() : "";
  // The last refresh is the one that sees the trial ended.
  trialPage.ended = FINISHED.has(trial.state);
  const seen = JSON.stringify([trial, reports, log.length]);
  if (seen === trialPage.seen) return;
  trialPage.seen = seen;
  document.title = `knob: ${trial.name}`;
  document.getElementById("name").textContent = trial.name;
  document.getElementById("title").textContent = trial.name;
  const status = document.getElementById("status");
  status.textContent = trial.state;
  status.className = `status ${trial.state}`;
  document.getElementById("message").textContent = [trial.reason, trial.message].filter(Boolean).join(": ");
  document.getElementById("objective").textContent = number(trial.objectiveValue);
  document.getElementById("exit-code").textContent = trial.exitCode ?? "";
  document.getElementById("started").textContent = time(trial.startedAt);
  document.getElementById("duration").textContent = span(trial.startedAt, trial.completedAt);
  document.querySelector("#parameters tbody").replaceChildren(...trial.assignments.map((a) => {
    const row = element("tr");
    row.append(element("td", a.name), element("td", a.value));
    return row;
  }));
  drawMetrics(reports);
  const pre = document.getElementById("log");
  const following = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  pre.textContent = log.length > LOG_TAIL ? `…\n${log.slice(-LOG_TAIL)}` : log;
  if (following) pre.scrollTop = pre.scrollHeight;
}

if (document.body.dataset.page === "experiments") {
  poll(refreshExperiments);
} else if (document.body.dataset.page === "experiment") {
  const name = decodeURIComponent(location.pathname.split("/")[2] || "");
  document.getElementById("state-filter").addEventListener("change", drawTable);
  document.getElementById("export").addEventListener("click", exportCSV);
  poll(() => refreshExperiment(name));
} else if (document.body.dataset.page === "trial") {
  const [, , experiment, , trial] = location.pathname.split("/").map((part) => decodeURIComponent(part));
  const link = document.getElementById("experiment-link");
  link.textContent = experiment;
  link.href = `/experiments/${encodeURIComponent(experiment)}`;
  poll(() => refreshTrial(experiment, trial));
}
