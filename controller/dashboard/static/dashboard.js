// Fills a dashboard page from its JSON API and, for live pages, polls it every 2 s. No framework, no CDN.
"use strict";

const content = document.getElementById("content");
const statusLine = document.getElementById("status");
const POLL_MS = 2000;

function cell(value, cls) {
  const td = document.createElement("td");
  const shown = typeof value === "number" && !Number.isInteger(value) ? Number(value.toPrecision(6)) : value;
  td.textContent = shown === null || shown === undefined ? "–" : String(shown);
  if (cls) td.className = cls;
  return td;
}

function table(id, headers, rows) {
  const t = document.createElement("table");
  t.id = id;
  const head = document.createElement("tr");
  for (const h of headers) {
    const th = document.createElement("th");
    th.textContent = h;
    head.appendChild(th);
  }
  t.appendChild(head);
  for (const cells of rows) {
    const tr = document.createElement("tr");
    for (const td of cells) tr.appendChild(td);
    t.appendChild(tr);
  }
  return t;
}

const RENDER = {
  fleet(data) {
    const out = document.createElement("div");
    if (!data.agents.length) out.appendChild(document.createTextNode("No agent has dialled in and no job is leased."));
    else out.appendChild(table("fleet", ["name", "device key", "kind", "backends", "host", "version", "health",
                                         "last heartbeat (s ago)", "current job", "queued for key"],
      data.agents.map(a => [cell(a.name), cell(a.device_key), cell(a.kind), cell(a.backends), cell(a.host),
                            cell(a.version), a.quarantined ? cell("QUARANTINED", "quarantined") : cell(a.health, a.health),
                            cell(a.last_heartbeat_s_ago, "num"), cell(a.current_job), cell(a.queued_for_key, "num")])));
    if (data.keys.length) {
      const heading = document.createElement("h2");
      heading.textContent = "Golden-model checks";
      out.appendChild(heading);
      out.appendChild(table("golden", ["device key", "state", "checks", "baseline", "last check (ms)",
                                       "drift beyond the baseline's CI", "why quarantined"],
        data.keys.map(k => [cell(k.device_key), cell(k.state, k.state), cell(k.checks, "num"), cell(k.baseline),
                            cell(k.last_check_ms, "num"),
                            cell(k.drift === null ? null : `${(100 * k.drift).toFixed(1)} %`, "num"),
                            cell(k.reason)])));
    }
    return out;
  },
  campaigns(cells) {
    if (!cells.length) return document.createTextNode("The store holds no campaign.");
    const out = document.createElement("div");
    out.appendChild(table("campaigns", ["campaign", "device key", "done", "queued", "leased", "failed", "total",
                                        "rate (jobs/min)", "ETA (min)"],
      cells.map(c => [cell(c.campaign), cell(c.device_key), cell(c.done, "num"), cell(c.queued, "num"),
                      cell(c.leased, "num"), cell(c.failed, "num"), cell(c.total, "num"),
                      cell(c.rate_per_min, "num"), cell(c.eta_min, "num")])));
    for (const c of cells.filter(c => c.failures.length)) {
      const p = document.createElement("div");
      p.className = "failures";
      p.textContent = `${c.campaign} on ${c.device_key}: ` +
        c.failures.map(f => `${f.arch}: ${f.error}`).join("; ");
      out.appendChild(p);
    }
    return out;
  },
  dataset(data) {
    filters(data.choices);
    const rows = data.devices.map(d => [cell(d.device_key), cell(d.measurements, "num"),
                                        cell(d.architectures, "num"), cell(d.median_ms.toFixed(4), "num"),
                                        cell(d.p90_ms.toFixed(4), "num")]);
    plots(data);
    return table("devices", ["device key", "measurements", "architectures", "median ms", "p90 ms"], rows);
  },
  searches(data) {
    const out = document.createElement("div");
    out.appendChild(table("runs", ["run", "algorithm", "space", "device", "seed", "evaluations", "failed",
                                   "on the front", "wall s"],
      data.runs.map(r => [linked(r.run, `/searches/${r.run}`), cell(r.algo), cell(r.space), cell(r.device),
                          cell(r.seed, "num"), cell(r.evaluations, "num"), cell(r.failed, "num"),
                          cell(r.pareto_size, "num"), cell(r.wall_s, "num")])));
    if (data.autogo.length) {
      const heading = document.createElement("h2");
      heading.textContent = "AutoGO runs";
      out.appendChild(heading);
      out.appendChild(table("autogo-runs", ["run", "input", "metric", "device", "iterations", "evaluated",
                                            "on the front", "input's metric", "best on the front"],
        data.autogo.map(r => [linked(r.run, `/searches/${r.run}`), cell(r.input), cell(r.metric), cell(r.device),
                              cell(r.iterations, "num"), cell(r.evaluated, "num"), cell(r.front, "num"),
                              cell(r.input_metric, "num"), cell(r.best_on_front, "num")])));
    }
    for (const p of data.problems) {
      const line = document.createElement("div");
      line.className = "failures";
      line.textContent = `${p.run}: ${p.error}`;
      out.appendChild(line);
    }
    if (typeof Plotly !== "undefined" && data.curves.length) {
      Plotly.react("plot-a", data.curves.map(c => ({type: "scatter", mode: "lines", name: `${c.run} (${c.group})`,
                                                    legendgroup: c.group,
                                                    x: c.hypervolume.map((_, i) => i + 1), y: c.hypervolume})),
                   {title: {text: "Hypervolume vs evaluations (one normalisation per space, device and objectives)"},
                    xaxis: {title: {text: "evaluations"}}, yaxis: {title: {text: "hypervolume"}}, margin: {t: 40}});
    }
    return out;
  },
  "search-run"(data) {
    const [a, b] = data.objectives.map(o => o.column);
    const point = rows => ({x: rows.map(r => r[a]), y: rows.map(r => r[b]), text: rows.map(r => r.arch)});
    if (typeof Plotly !== "undefined") {
      const front = [...data.front].sort((p, q) => p[a] - q[a]);
      const predicted = [...data.predicted].sort((p, q) => p[a] - q[a]);
      Plotly.react("plot-a", [
        {type: "scatter", mode: "markers", name: "measured", marker: {size: 5, color: "#9aa7b3"},
         ...point(data.measured)},
        {type: "scatter", mode: "lines+markers", name: "measured front", ...point(front)},
        ...(predicted.length ? [{type: "scatter", mode: "lines+markers", name: "predicted front",
                                 line: {dash: "dot"}, ...point(predicted)}] : []),
      ], {title: {text: "Measured and predicted fronts (hover: the architecture)"},
          xaxis: {title: {text: a}}, yaxis: {title: {text: b}}, margin: {t: 40}});
      const seconds = data.controller_seconds_per_iteration;
      Plotly.react("plot-b", [{type: "bar", x: seconds.map((_, i) => i + 1), y: seconds}],
                   {title: {text: "Controller time per iteration"}, xaxis: {title: {text: "iteration"}},
                    yaxis: {title: {text: "seconds"}}, margin: {t: 40}});
    }
    return table("front", ["architecture", a, b], data.front.map(r => [cell(r.arch), cell(r[a], "num"),
                                                                      cell(r[b], "num")]));
  },
  "autogo-run"(data) {
    const m = data.metric;
    const label = r => `#${r.id} ${r.arch_id.slice(0, 12)} (iteration ${r.iteration}` +
      (r.segment === "" ? ", the input" : `, segment ${r.segment}, ${r.changes} resolution change(s)`) + ")";
    const measured = data.evaluated.filter(r => typeof r[m] === "number");
    const point = rows => ({x: rows.map(r => r[m]), y: rows.map(r => r.predicted_accuracy), text: rows.map(label),
                            customdata: rows.map(r => r.arch_id)});
    if (typeof Plotly !== "undefined") {
      const front = [...data.front].filter(r => typeof r[m] === "number").sort((p, q) => p[m] - q[m]);
      Plotly.react("plot-a", [
        {type: "scatter", mode: "markers", name: "evaluated", marker: {size: 5, color: "#9aa7b3"}, ...point(measured)},
        {type: "scatter", mode: "lines+markers", name: "front", ...point(front)},
        {type: "scatter", mode: "markers", name: "input", marker: {size: 12, symbol: "star", color: "#c0392b"},
         ...point(measured.slice(0, 1))},
      ], {title: {text: `Predicted accuracy vs ${m}`},
          xaxis: {title: {text: m}}, yaxis: {title: {text: "predicted accuracy (%)"}}, margin: {t: 40}});
      document.getElementById("plot-a").on("plotly_click", ev => {
        const target = document.getElementById(`mutation-${ev.points[0].customdata}`);
        if (target) target.scrollIntoView();
      });
    }
    const out = document.createElement("div");
    const hint = document.createElement("p");
    hint.className = "status";
    hint.textContent = "The front of predicted accuracy vs the metric. In the plot, hover a point for its network " +
      "and click a front network to see the mutation that made it (pictures below the plot).";
    out.appendChild(hint);
    out.appendChild(table("front", ["network", "iteration", "predicted accuracy", m, "MACs change %", "segment",
                                    "resolution changes", "ONNX"],
      data.front.map(r => [cell(r.arch_id.slice(0, 12)), cell(r.iteration, "num"), cell(r.predicted_accuracy, "num"),
                           cell(r[m], "num"), cell(r.macs_change_pct, "num"), cell(r.segment), cell(r.changes, "num"),
                           linked("download", r.onnx_url)])));
    const gallery = document.getElementById("gallery");
    gallery.replaceChildren();
    for (const r of data.front.filter(r => r.picture_url)) {
      const figure = document.createElement("figure");
      figure.id = `mutation-${r.arch_id}`;
      figure.className = "mutation";
      const img = document.createElement("img");
      img.src = r.picture_url;
      img.alt = `the mutation that made ${r.arch_id}`;
      const caption = document.createElement("figcaption");
      caption.textContent = `${label(r)}: predicted ${r.predicted_accuracy} %, ${m} ${r[m]}`;
      figure.append(caption, img);
      gallery.appendChild(figure);
    }
    return out;
  },
};

function linked(text, href) {
  const td = cell("");
  const link = document.createElement("a");
  link.href = href;
  link.textContent = text;
  td.appendChild(link);
  return td;
}

function filters(choices) {
  const form = document.getElementById("filters");
  if (form.childElementCount) return;
  const current = new URLSearchParams(window.location.search);
  for (const [name, values] of Object.entries(choices)) {
    const select = document.createElement("select");
    select.name = name;
    select.id = `filter-${name}`;
    for (const v of ["", ...values]) {
      const o = document.createElement("option");
      o.value = v;
      o.textContent = v || `any ${name}`;
      o.selected = current.get(name) === v;
      select.appendChild(o);
    }
    select.onchange = () => form.submit();
    form.appendChild(select);
  }
}

function plots(data) {
  if (typeof Plotly === "undefined") return;
  const layout = (title, x, y) => ({title: {text: title}, xaxis: {title: {text: x}}, yaxis: {title: {text: y}},
                                    margin: {t: 40}});
  const boxes = data.devices.map(d => ({type: "box", name: d.device_key, x: [d.device_key], legendgroup: d.device_key,
                                        q1: [d.box.q1], median: [d.box.median], q3: [d.box.q3],
                                        lowerfence: [d.box.lowerfence], upperfence: [d.box.upperfence]}));
  // a box drawn from its statistics has no points: its outliers are a scatter of their own
  const outliers = data.devices.map(d => ({type: "scatter", mode: "markers", name: `${d.device_key} outliers`,
                                           legendgroup: d.device_key, showlegend: false,
                                           x: d.box.outliers.map(() => d.device_key), y: d.box.outliers,
                                           marker: {size: 4, symbol: "circle-open"}}));
  Plotly.react("distribution", [...boxes, ...outliers],
               layout("Latency per device (outliers beyond 1.5 IQR as points)", "device key", "latency (ms)"));
  const archs = data.scatter_archs;
  Plotly.react("scatter", data.devices.map(d => ({type: "scattergl", mode: "markers", name: d.device_key,
                                                  x: d.scatter.index.map(i => archs.macs[i]), y: d.scatter.latency_ms,
                                                  text: d.scatter.index.map(i => archs.arch_id[i]),
                                                  marker: {size: 4}})),
               layout("Latency vs MACs (median per architecture)", "MACs", "latency (ms)"));
  document.getElementById("scatter").on("plotly_click", ev => {
    const id = ev.points[0].text;
    if (id) window.location.href = `/arch/${id}`;
  });
  Plotly.react("heatmap", [{type: "heatmap", z: data.spearman, x: data.device_keys, y: data.device_keys,
                            zmin: -1, zmax: 1, colorscale: "RdBu", customdata: data.common,
                            hovertemplate: "%{y} vs %{x}: ρ %{z} over %{customdata} architectures<extra></extra>"}],
               layout("Spearman rank correlation between devices", "", ""));
}

async function refresh() {
  try {
    // the first answer was asked for in the page's head, so the server worked while Plotly loaded
    const response = await (window.hwnasFirst || fetch(content.dataset.api, {credentials: "same-origin"}));
    window.hwnasFirst = null;
    const data = await response.json();
    if (!response.ok) throw new Error(data.error || response.statusText);
    content.replaceChildren(RENDER[content.dataset.page](data));
    statusLine.textContent = `updated ${new Date().toLocaleTimeString()}`;
    statusLine.className = "status";
  } catch (err) {
    statusLine.textContent = `could not update: ${err.message}`;
    statusLine.className = "status error";
  }
}

refresh();
if (["fleet", "campaigns"].includes(content.dataset.page)) setInterval(refresh, POLL_MS);
