// knob's dashboard: the experiments list, an experiment's page and a trial's page, read from knobd's
// API and kept up to date by its update streams (Server-Sent Events): each page reads a snapshot, then
// applies what changed. Charts are Chart.js, from Debian's libjs-chart.js.
"use strict";

const FINISHED = new Set(["Succeeded", "Failed", "EarlyStopped", "MetricsUnavailable", "Killed"]);
// Trials whose objective value is a result of the search (an early-stopped trial reports its last value).
const COMPLETED = new Set(["Succeeded", "EarlyStopped"]);
// The longest a page waits before trying again a stream knobd refused (503: too many open).
const RETRY_MS = 10000;
// Redraws at most this often, however fast updates come.
const DRAW_MS = 300;

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

// Follows an update stream: `handlers` by event name get each message's data, parsed. The browser
// reconnects by itself after a dropped connection, sending the last id so the stream resumes where it
// was; a refusal (knobd serves too many streams) is retried later, from the same place. An `end`
// message closes the stream for good.
function follow(path, handlers) {
  let lastId = null;
  const connect = () => {
    const source = new EventSource(lastId ? `${path}${path.includes("?") ? "&" : "?"}since=${encodeURIComponent(lastId)}` : path);
    for (const [name, handle] of Object.entries(handlers)) {
      source.addEventListener(name, (event) => {
        if (window.knobReceived === undefined) window.knobReceived = performance.now();
        if (event.lastEventId) lastId = event.lastEventId;
        try { handle(JSON.parse(event.data)); showProblem(null); } catch (error) { showProblem(error); }
      });
    }
    source.addEventListener("end", (event) => {
      source.close();
      if (JSON.parse(event.data).reason === "deleted") showProblem(new Error("this experiment has been deleted"));
    });
    source.addEventListener("error", () => {
      if (source.readyState !== EventSource.CLOSED) return;
      // Refused (too many streams open, the experiment gone…): say why, in the API's words, and try
      // again later. The question is asked as the stream would be, and let go once answered.
      const asking = new AbortController();
      fetch(path, { credentials: "same-origin", headers: { Accept: "text/event-stream" }, signal: asking.signal })
        .then(async (response) => {
          if (response.ok) return asking.abort();
          const body = await response.json().catch(() => null);
          showProblem(new Error(`live updates stopped: ${body && body.error ? body.error.message : response.status}; trying again`));
        }).catch(() => {});
      setTimeout(connect, RETRY_MS);
    });
  };
  connect();
}

// Runs `draw` soon, at most once per DRAW_MS however often it is asked for.
function throttled(draw) {
  let timer = null;
  let last = 0;
  return () => {
    if (timer !== null) return;
    timer = setTimeout(() => {
      timer = null;
      last = performance.now();
      try { draw(); } catch (error) { showProblem(error); }
    }, Math.max(0, last + DRAW_MS - performance.now()));
  };
}

// MARK: The experiments list

function drawExperiments(experiments) {
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

// The rows the table shows at first: a person reads a page of them, and thousands of rows make every
// redraw slow. "Show all" lifts it.
const ROWS_SHOWN = 500;
// Above this many trials with reports, the intermediate values are one line set (one color) rather
// than one dataset per trial.
const CURVES_APART = 100;

const page = {
  name: "", experiment: null, parameters: [], trials: new Map(), reports: new Map(), lastReport: 0,
  charts: {}, sort: { column: 0, descending: false }, maximize: true, showAll: false,
  importances: { loading: false, completed: -1, at: 0, first: null },
};

function completedTrials() {
  return [...page.trials.values()].filter((t) => COMPLETED.has(t.state) && t.objectiveValue !== undefined && t.objectiveValue !== null)
    .sort((a, b) => a.sequence - b.sequence);
}

function metricName() {
  return page.experiment.objective.split(" ").slice(1).join(" ");
}

// A chart made once and then given new data: `make` builds its configuration, `update` refreshes it.
function chart(key, canvas, make, update) {
  const existing = page.charts[key];
  if (existing && existing.canvas === canvas) {
    update(existing);
    existing.update("none");
    return existing;
  }
  if (existing) existing.destroy();
  page.charts[key] = new Chart(canvas, make());
  return page.charts[key];
}

const BASE = { animation: false, responsive: true, maintainAspectRatio: false };

function bestSoFar(points, maximize) {
  let best = null;
  return points.map((point) => {
    if (best === null || (maximize ? point.y > best : point.y < best)) best = point.y;
    return { x: point.x, y: best };
  });
}

function drawHistory(completed) {
  const points = completed.map((t) => ({ x: t.sequence, y: t.objectiveValue, trial: t.name }));
  const best = bestSoFar(points, page.maximize);
  chart("history", document.getElementById("history"), () => ({
    type: "scatter",
    data: { datasets: [
      { label: "objective", data: points, backgroundColor: "#2f6fb0", pointRadius: completed.length > 2000 ? 2 : 4 },
      { type: "line", label: "best so far", data: best, borderColor: "#d1495b", backgroundColor: "#d1495b", stepped: true, pointRadius: 0, borderWidth: 2 },
    ] },
    options: { ...BASE, parsing: false,
      scales: { x: { type: "linear", title: { display: true, text: "trial" }, ticks: { precision: 0 } }, y: { title: { display: true, text: metricName() } } },
      plugins: { tooltip: { callbacks: { label: (item) => `${item.raw.trial || "best"}: ${number(item.raw.y)}` } } } },
  }), (made) => {
    made.data.datasets[0].data = points;
    made.data.datasets[1].data = best;
  });
}

// Each trial's reports of the objective metric by step, one line per trial; an early-stopped trial's
// last report is a cross, where it was stopped. Many trials: all lines in one dataset, apart by gaps.
function drawIntermediate() {
  const curves = [...page.reports].map(([name, reports]) => [name, reports.map((r) => ({ x: r.step, y: r.value })).sort((a, b) => a.x - b.x)]);
  let datasets;
  if (curves.length <= CURVES_APART) {
    datasets = curves.map(([name, points], index) => {
      const stopped = page.trials.get(name)?.state === "EarlyStopped";
      const last = (k) => stopped && k === points.length - 1;
      const color = `hsl(${(index * 47) % 360} 60% 42%)`;
      return { label: name, data: points, borderColor: color, backgroundColor: color, borderWidth: 1.5,
        pointStyle: points.map((_, k) => (last(k) ? "crossRot" : "circle")), pointRadius: points.map((_, k) => (last(k) ? 8 : 2)) };
    });
  } else {
    const data = [];
    for (const [, points] of curves) data.push(...points, { x: points[points.length - 1].x, y: null });
    datasets = [{ label: `${curves.length} trials`, data, borderColor: "rgba(47,111,176,0.35)", backgroundColor: "#2f6fb0", borderWidth: 1, pointRadius: 1, spanGaps: false }];
  }
  chart("intermediate", document.getElementById("intermediate"), () => ({
    type: "line", data: { datasets },
    options: { ...BASE, parsing: false,
      scales: { x: { type: "linear", title: { display: true, text: "step" }, ticks: { precision: 0 } }, y: { title: { display: true, text: metricName() } } },
      plugins: { legend: { display: datasets.length <= 12 } } },
  }), (made) => {
    made.data.datasets = datasets;
    made.options.plugins.legend.display = datasets.length <= 12;
  });
}

// A parameter's value as a number on its axis (a list's values by their place in the list).
function parameterValue(parameter, trial) {
  const text = (trial.assignments.find((a) => a.name === parameter.name) || {}).value;
  if (text === undefined) return null;
  if (parameter.values) return parameter.values.indexOf(text);
  const value = Number(text);
  return Number.isFinite(value) ? value : null;
}

// Where `value` lies between the axis' ends, 0 to 1, in the axis' scale.
function placeOnAxis(axis, value) {
  if (value === null) return null;
  if (axis.labels) return axis.labels.length > 1 ? value / (axis.labels.length - 1) : 0.5;
  if (axis.max === axis.min) return 0.5;
  if (axis.log) return (Math.log(value) - Math.log(axis.min)) / (Math.log(axis.max) - Math.log(axis.min));
  return (value - axis.min) / (axis.max - axis.min);
}

// The parallel coordinates' axes: one per parameter, then the objective, as Chart.js scales placed at
// x = 0, 1, 2…; the lines are drawn on a hidden 0…1 scale that each axis' ticks are aligned with.
function parallelAxes(completed) {
  const axes = page.parameters.map((parameter) => ({
    title: parameter.name, labels: parameter.values || null, log: parameter.scale === "log", min: parameter.min, max: parameter.max,
    value: (t) => parameterValue(parameter, t),
  }));
  const values = completed.map((t) => t.objectiveValue);
  const low = values.length ? Math.min(...values) : 0;
  const high = values.length ? Math.max(...values) : 1;
  axes.push({ title: metricName(), labels: null, log: false, min: low, max: high, value: (t) => t.objectiveValue });
  return axes;
}

function parallelScales(axes) {
  const scales = {
    x: { type: "linear", min: -0.15, max: axes.length - 0.85, grid: { display: false },
      afterBuildTicks: (scale) => { scale.ticks = axes.map((_, i) => ({ value: i })); },
      ticks: { callback: (value) => (axes[value] ? axes[value].title : "") } },
    y: { type: "linear", min: 0, max: 1, display: false },
  };
  axes.forEach((axis, i) => {
    const common = { axis: "y", position: { x: i }, grid: { display: false }, ticks: { font: { size: 10 } } };
    if (axis.labels) scales[`a${i}`] = { ...common, type: "category", labels: axis.labels, reverse: axis.labels.length > 1, offset: false };
    else if (axis.max === axis.min) scales[`a${i}`] = { ...common, type: "linear", min: axis.min - 1, max: axis.max + 1 };
    else scales[`a${i}`] = { ...common, type: axis.log ? "logarithmic" : "linear", min: axis.min, max: axis.max };
  });
  return scales;
}

function drawParallel(completed) {
  const axes = parallelAxes(completed);
  const data = [];
  for (const trial of completed) {
    axes.forEach((axis, i) => data.push({ x: i, y: placeOnAxis(axis, axis.value(trial)) }));
    data.push({ x: axes.length - 1, y: null });
  }
  const best = page.experiment.currentOptimalTrial?.bestTrialName;
  const bestTrial = completed.find((t) => t.name === best);
  const bestLine = bestTrial ? axes.map((axis, i) => ({ x: i, y: placeOnAxis(axis, axis.value(bestTrial)) })) : [];
  const canvas = document.getElementById("parallel");
  const signature = JSON.stringify(axes.map((a) => [a.title, a.min, a.max, a.labels]));
  if (page.charts.parallel && page.charts.parallel.$signature !== signature) {
    page.charts.parallel.destroy();
    delete page.charts.parallel;
  }
  const made = chart("parallel", canvas, () => ({
    type: "line",
    data: { datasets: [
      { label: "trials", data, borderColor: completed.length > 500 ? "rgba(47,111,176,0.12)" : "rgba(47,111,176,0.45)", borderWidth: 1, pointRadius: 0, spanGaps: false },
      { label: "best", data: bestLine, borderColor: "#d1495b", borderWidth: 2.5, pointRadius: 3, pointBackgroundColor: "#d1495b" },
    ] },
    options: { ...BASE, parsing: false, events: [], scales: parallelScales(axes), plugins: { legend: { display: false }, tooltip: { enabled: false } } },
  }), (existing) => {
    existing.data.datasets[0].data = data;
    existing.data.datasets[1].data = bestLine;
  });
  made.$signature = signature;
}

// The objective against each parameter, one scatter per parameter: a log axis where the parameter is
// log-scaled, its values in order for a list.
function drawSlices(completed) {
  const holder = document.getElementById("slices");
  page.parameters.forEach((parameter, index) => {
    let canvas = holder.querySelector(`canvas[data-parameter="${CSS.escape(parameter.name)}"]`);
    if (!canvas) {
      const box = element("div", null, "chart");
      canvas = element("canvas");
      canvas.dataset.parameter = parameter.name;
      canvas.id = `slice-${index}`;
      box.append(canvas);
      holder.append(box);
    }
    const points = completed.map((t) => {
      const text = (t.assignments.find((a) => a.name === parameter.name) || {}).value;
      return { x: parameter.values ? text : Number(text), y: t.objectiveValue, trial: t.name };
    });
    const x = parameter.values
      ? { type: "category", labels: parameter.values, offset: true }
      : { type: parameter.scale === "log" ? "logarithmic" : "linear", min: parameter.min, max: parameter.max };
    chart(`slice:${parameter.name}`, canvas, () => ({
      type: "scatter",
      // Marks at the space's bounds are drawn whole, past the plot's edge.
      data: { datasets: [{ label: parameter.name, data: points, backgroundColor: "rgba(47,111,176,0.6)", pointRadius: completed.length > 2000 ? 1.5 : 3, clip: 6 }] },
      options: { ...BASE, parsing: !!parameter.values,
        scales: { x: { ...x, title: { display: true, text: parameter.name + (parameter.scale === "log" ? " (log)" : "") } }, y: { title: { display: true, text: metricName() } } },
        plugins: { legend: { display: false }, tooltip: { callbacks: { label: (item) => `${item.raw.trial}: ${item.raw.x}, ${number(item.raw.y)}` } } } },
    }), (made) => { made.data.datasets[0].data = points; });
  });
}

// The importances route answers once enough trials have completed; until then, and when it answers
// 404 (too few trials, or a knobd without it), the section says so instead of drawing.
function requestImportances() {
  page.importances.at = performance.now();
  return fetch(`/v1/experiments/${encodeURIComponent(page.name)}/importances`, { credentials: "same-origin" })
    .then(async (response) => ({ ok: response.ok, body: await response.json().catch(() => null) }))
    .catch((error) => ({ ok: false, error }));
}

function drawImportances({ ok, body, error }) {
  const note = document.getElementById("importance-note");
  const box = document.getElementById("importance-chart");
  const importances = ok && body && Array.isArray(body.importances) ? body.importances : [];
  if (!importances.length) {
    const why = error ? error.message : body && body.error ? body.error.message : "none yet";
    note.textContent = `Parameter importances appear once enough trials have completed (${why}).`;
    note.hidden = false;
    box.hidden = true;
    if (page.charts.importance) { page.charts.importance.destroy(); delete page.charts.importance; }
    return;
  }
  note.hidden = true;
  box.hidden = false;
  const labels = importances.map((i) => i.name);
  const values = importances.map((i) => i.importance);
  const caption = `importance (${body.evaluator || "evaluator"}, ${body.trials} trials)`;
  chart("importance", document.getElementById("importance"), () => ({
    type: "bar",
    data: { labels, datasets: [{ label: caption, data: values, backgroundColor: "#2f6fb0" }] },
    options: { ...BASE, indexAxis: "y", scales: { x: { min: 0, title: { display: true, text: "importance" } } }, plugins: { legend: { display: false } } },
  }), (made) => {
    made.data.labels = labels;
    made.data.datasets[0].data = values;
    made.data.datasets[0].label = caption;
  });
}

// Reads the importances again when more trials have completed: at most every 15 s while trials keep
// coming, and once more when the experiment ends (`final`). The first answer was asked for with the
// page, beside the stream.
async function loadImportances(final) {
  const state = page.importances;
  if (!page.experiment || state.loading) return;
  const completed = completedTrials().length;
  if (completed === state.completed) return;
  if (!final && state.completed >= 0 && performance.now() - state.at < 15000) return;
  state.loading = true;
  state.completed = completed;
  try {
    drawImportances(await (state.first || requestImportances()));
  } finally {
    state.first = null;
    state.loading = false;
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
    ...page.parameters.map(({ name }) => ({
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
  const all = [...page.trials.values()];
  const rows = all.filter((t) => !state || t.state === state)
    .map((t) => ({ t, key: sortColumn.value(t) }))
    .sort((a, b) => {
      const order = compare(a.key, b.key);
      // Empty cells stay last whichever way the column is sorted.
      if (a.key === null || b.key === null) return order;
      return page.sort.descending ? -order : order;
    }).map((row) => row.t);
  const shown = page.showAll ? rows : rows.slice(0, ROWS_SHOWN);
  document.querySelector("#trials tbody").replaceChildren(...shown.map((t) => {
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
  const counter = document.getElementById("shown");
  counter.textContent = shown.length < rows.length
    ? `${shown.length} of ${rows.length} trials shown` : `${rows.length} of ${all.length} trials`;
  if (shown.length < rows.length) {
    const more = element("button", "Show all");
    more.type = "button";
    more.id = "more";
    more.addEventListener("click", () => { page.showAll = true; drawTable(); });
    counter.append(more);
  }
}

function drawStateFilter() {
  const select = document.getElementById("state-filter");
  const states = [...new Set([...page.trials.values()].map((t) => t.state))].sort();
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
  const trials = [...page.trials.values()].sort((a, b) => a.sequence - b.sequence);
  const names = page.parameters.map((p) => p.name);
  const metrics = [...new Set(trials.flatMap((t) => t.observation.map((m) => m.name)))].sort();
  const header = ["sequence", "name", "state", "reason", "objective", ...names, ...metrics, "startedAt", "completedAt"];
  const lines = [header.map(csvField).join(",")];
  for (const t of trials) {
    const parameters = names.map((name) => (t.assignments.find((a) => a.name === name) || {}).value);
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

// The heading an experiment's and a trial's pages share: the name, its status badge, and why it is so.
function drawHeading(name, status, reason, message) {
  document.title = `knob: ${name}`;
  document.getElementById("name").textContent = name;
  document.getElementById("title").textContent = name;
  const badge = document.getElementById("status");
  badge.textContent = status;
  badge.className = `status ${status}`;
  document.getElementById("message").textContent = [reason, message].filter(Boolean).join(": ");
}

function drawSummary(experiment) {
  drawHeading(experiment.name, experiment.status, experiment.reason, experiment.message);
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

function drawExperiment() {
  if (!page.experiment) return Promise.resolve();
  drawSummary(page.experiment);
  const completed = completedTrials();
  drawHistory(completed);
  drawIntermediate();
  drawParallel(completed);
  drawSlices(completed);
  drawStateFilter();
  drawTable();
  return loadImportances(false);
}

const redrawExperiment = throttled(drawExperiment);

// Applies a snapshot or a delta: trials replace their earlier selves, reports add to their trial's.
function applyExperiment(message) {
  if (message.experiment) {
    page.experiment = message.experiment;
    page.maximize = message.experiment.objective.startsWith("maximize");
  }
  if (message.parameters) page.parameters = message.parameters;
  for (const trial of message.trials || []) page.trials.set(trial.name, trial);
  for (const report of message.reports || []) {
    if (report.id <= page.lastReport) continue;
    page.lastReport = report.id;
    if (!page.reports.has(report.trialName)) page.reports.set(report.trialName, []);
    page.reports.get(report.trialName).push(report);
  }
}

// MARK: A trial's page

// The log's tail shown: a trial that prints much would otherwise make the page heavy.
const LOG_TAIL = 200000;
const trialPage = { chart: null, trial: null, reports: [], lastReport: 0, log: "", logFollowed: false };

function drawMetrics(reports) {
  const names = [...new Set(reports.map((r) => r.name))].sort();
  const palette = ["#2f6fb0", "#d1495b", "#3f9b4f", "#e08e0b", "#7a4fb3", "#00798c"];
  const datasets = names.map((name, index) => ({
    label: name, borderColor: palette[index % palette.length], backgroundColor: palette[index % palette.length], pointRadius: 3,
    data: reports.filter((r) => r.name === name).sort((a, b) => a.step - b.step).map((r) => ({ x: r.step, y: r.value })),
  }));
  if (!trialPage.chart) {
    trialPage.chart = new Chart(document.getElementById("metrics"), {
      type: "line", data: { datasets },
      options: { ...BASE, parsing: true,
        scales: { x: { type: "linear", title: { display: true, text: "step" }, ticks: { precision: 0 } } } },
    });
  } else {
    trialPage.chart.data.datasets = datasets;
    trialPage.chart.update("none");
  }
}

function drawTrial() {
  const trial = trialPage.trial;
  if (!trial) return;
  drawHeading(trial.name, trial.state, trial.reason, trial.message);
  document.getElementById("objective").textContent = number(trial.objectiveValue);
  document.getElementById("exit-code").textContent = trial.exitCode ?? "";
  document.getElementById("started").textContent = time(trial.startedAt);
  document.getElementById("duration").textContent = span(trial.startedAt, trial.completedAt);
  document.querySelector("#parameters tbody").replaceChildren(...trial.assignments.map((a) => {
    const row = element("tr");
    row.append(element("td", a.name), element("td", a.value));
    return row;
  }));
  drawMetrics(trialPage.reports);
}

function showLog(text) {
  trialPage.log = text.length > LOG_TAIL ? text.slice(-LOG_TAIL) : text;
  const pre = document.getElementById("log");
  const following = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  pre.textContent = text.length > LOG_TAIL ? `…\n${trialPage.log}` : trialPage.log;
  if (following) pre.scrollTop = pre.scrollHeight;
}

// Reads the log once the trial has started: as it is written while the trial runs (the logs route
// follows it), whole once it has ended.
async function readLog(path, trial) {
  if (trialPage.logFollowed || !trial.startedAt) return;
  trialPage.logFollowed = true;
  const running = !FINISHED.has(trial.state);
  const response = await fetch(`${path}/logs${running ? "?follow=true" : ""}`, { credentials: "same-origin" });
  if (!response.ok) return;
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
    if (text.length > 2 * LOG_TAIL) text = text.slice(-LOG_TAIL);
    showLog(text);
  }
  showLog(text + decoder.decode());
}

function applyTrial(message, path) {
  const trial = (message.trials || [])[0];
  if (trial) trialPage.trial = trial;
  for (const report of message.reports || []) {
    if (report.id <= trialPage.lastReport) continue;
    trialPage.lastReport = report.id;
    trialPage.reports.push(report);
  }
  drawTrial();
  if (trialPage.trial) readLog(path, trialPage.trial).catch(showProblem);
}

if (document.body.dataset.page === "experiments") {
  follow("/v1/streams/experiments", { experiments: drawExperiments });
} else if (document.body.dataset.page === "experiment") {
  page.name = decodeURIComponent(location.pathname.split("/")[2] || "");
  page.importances.first = requestImportances();
  document.getElementById("state-filter").addEventListener("change", drawTable);
  document.getElementById("export").addEventListener("click", exportCSV);
  const apply = (message) => { applyExperiment(message); redrawExperiment(); };
  follow(`/v1/streams/experiments/${encodeURIComponent(page.name)}`, {
    snapshot: (message) => {
      // A new snapshot (the stream started again from scratch) replaces everything.
      window.knobTimes = window.knobTimes || { snapshot: performance.now() };
      page.trials.clear();
      page.reports.clear();
      page.lastReport = 0;
      applyExperiment(message);
      const drawing = drawExperiment();
      window.knobTimes.plotted = window.knobTimes.plotted || performance.now();
      drawing.then(() => {
        // The moment every plot of the first snapshot is drawn (the benchmark reads it).
        if (window.knobDrawn === undefined) window.knobDrawn = performance.now();
      });
    },
    delta: apply,
    end: () => loadImportances(true),
  });
} else if (document.body.dataset.page === "trial") {
  const [, , experiment, , trial] = location.pathname.split("/").map((part) => decodeURIComponent(part));
  const link = document.getElementById("experiment-link");
  link.textContent = experiment;
  link.href = `/experiments/${encodeURIComponent(experiment)}`;
  const path = `/v1/experiments/${encodeURIComponent(experiment)}/trials/${encodeURIComponent(trial)}`;
  const apply = (message) => applyTrial(message, path);
  follow(`/v1/streams/experiments/${encodeURIComponent(experiment)}?trial=${encodeURIComponent(trial)}`, { snapshot: apply, delta: apply });
}
