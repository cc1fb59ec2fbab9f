// The viewer: a hash router over three pages.
//   #/                      the jobs
//   #/jobs/<job id>         one job, live
//   #/correlations/<id>     every job of one correlation id, in one timeline

import { apiBase, apiKey, setApiKey, UNAUTHORIZED_EVENT } from "./api.js";
import { h, fill } from "./dom.js";
import { correlationPage } from "./pages/correlation.js";
import { jobPage } from "./pages/job.js";
import { jobsPage } from "./pages/jobs.js";

const view = document.getElementById("view");
const crumbs = document.getElementById("crumbs");
document.getElementById("server").textContent = apiBase.host + apiBase.pathname.replace(/\/$/, "");

/** What tests and tools can read: the current page's event list. */
window.narrationViewer = { list: null, route: null };

function setCrumbs(items) {
  fill(
    crumbs,
    items.map(([href, text], i) => [
      i ? h("span", { class: "sep", "aria-hidden": "true" }, "/") : null,
      href ? h("a", { href }, text) : h("span", { class: "here" }, text),
    ]),
  );
  document.title = `${items[items.length - 1][1]} · narration`;
}

let current = null;

function route() {
  current?.unmount();
  window.narrationViewer.list = null;
  const path = decodeURIComponent(location.hash.replace(/^#/, "")) || "/";
  const parts = path.split("/").filter(Boolean);
  window.narrationViewer.route = parts;
  if (parts.length === 0 || (parts[0] === "jobs" && parts.length === 1)) {
    current = jobsPage(view, setCrumbs);
  } else if (parts[0] === "jobs" && parts.length === 2) {
    current = jobPage(view, parts[1], setCrumbs);
  } else if (parts[0] === "correlations" && parts.length === 2) {
    current = correlationPage(view, parts[1], setCrumbs);
  } else {
    setCrumbs([["#/", "Jobs"], [null, "not found"]]);
    fill(
      view,
      h("section", { class: "notice notice-warn", role: "alert" },
        h("h2", {}, "No such page"),
        h("p", {}, `The viewer has no page at “${path}”.`),
        h("p", {}, h("a", { href: "#/" }, "← All jobs"))),
    );
    current = null;
  }
}

/** The form asking for an API key, shown when the server answered 401. */
function keyForm(detail) {
  current?.unmount();
  current = null;
  if (view.querySelector("#api-key")) return; // already asking: keep what is typed
  setCrumbs([["#/", "Jobs"], [null, "API key"]]);
  const input = h("input", {
    id: "api-key",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    "aria-label": "API key",
  });
  const had = apiKey();
  const form = h(
    "form",
    { class: "notice notice-warn key-form", role: "alert" },
    h("h2", {}, had ? "This API key is not accepted" : "API key needed"),
    h(
      "p",
      {},
      detail && detail.code !== "unauthorized" && detail.message
        ? detail.message
        : "This server answers only requests that carry an API key.",
    ),
    h("p", {}, "The key stays in this tab (sessionStorage) and is sent to this server only."),
    h("p", {}, input, " ", h("button", { type: "submit", class: "btn" }, "Use key")),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!input.value.trim()) return;
    setApiKey(input.value.trim());
    showKeyButton();
    route();
  });
  fill(view, form);
  input.focus();
}

const forget = document.getElementById("forget-key");
function showKeyButton() {
  forget.hidden = !apiKey();
}
forget.addEventListener("click", () => {
  setApiKey(null);
  showKeyButton();
  route();
});

// After the page's own error handling has run (its promise reactions come first).
window.addEventListener(UNAUTHORIZED_EVENT, (event) => setTimeout(() => keyForm(event.detail)));

window.addEventListener("hashchange", route);
showKeyButton();
route();
